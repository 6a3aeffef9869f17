// Number and time formatting. Prices show the decimals of their tick; money two decimals.

const DASH = "—";

export function decimalsOf(step) {
  if (!step) return 2;
  const text = String(step);
  if (text.includes("e-")) return Number(text.split("e-")[1]);
  const point = text.indexOf(".");
  return point < 0 ? 0 : text.length - point - 1;
}

export function price(value, tick) {
  if (value === null || value === undefined) return DASH;
  return Number(value).toLocaleString("en-US", {
    minimumFractionDigits: decimalsOf(tick),
    maximumFractionDigits: decimalsOf(tick),
  });
}

export function amount(value, step) {
  if (value === null || value === undefined) return DASH;
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: Math.max(decimalsOf(step), 0) });
}

export function usd(value, digits = 2) {
  if (value === null || value === undefined) return DASH;
  return Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function compact(value) {
  if (value === null || value === undefined) return DASH;
  return Number(value).toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 2 });
}

export function fixed(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  return Number(value).toFixed(digits);
}

export function percent(value, digits = 2) {
  if (value === null || value === undefined) return DASH;
  return `${Number(value).toFixed(digits)}%`;
}

export function signed(value, digits = 2) {
  if (value === null || value === undefined) return DASH;
  const text = usd(Math.abs(value), digits);
  return value > 0 ? `+${text}` : value < 0 ? `−${text}` : text;
}

export function time(ms) {
  if (!ms) return DASH;
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
}

export function dateTime(ms) {
  if (!ms) return DASH;
  const date = new Date(ms);
  return `${date.toISOString().slice(0, 10)} ${date.toLocaleTimeString("en-GB", { hour12: false })}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return DASH;
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

export function shortHash(hex) {
  if (!hex) return DASH;
  return hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex;
}

export function ms(value) {
  if (value === null || value === undefined) return DASH;
  return `${Number(value).toFixed(value < 10 ? 2 : 1)} ms`;
}

export { DASH };
