// Charts drawn as SVG in the container's pixel size, redrawn when it resizes.
// A chart is {series: [{label, points: [[x, y]], kind: "line"|"dots"|"step"|"area"|"bars", cls}],
// x: {format, min?, max?}, y: {format, min?, max?}, markers: [{x, label}], band: {lower, upper}}.

const SVG = "http://www.w3.org/2000/svg";
const MARGIN = { top: 10, right: 12, bottom: 22, left: 58 };

function node(tag, attributes = {}) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

function niceTicks(min, max, count) {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(v);
  return ticks;
}

export class Chart {
  constructor(container, { label, height = 180 } = {}) {
    this.container = container;
    this.height = height;
    this.data = null;
    this.svg = node("svg", { role: "img", "aria-label": label || "chart", class: "chart" });
    container.replaceChildren(this.svg);
    this.observer = new ResizeObserver(() => this.draw());
    this.observer.observe(container);
  }

  render(data) {
    this.data = data;
    this.draw();
  }

  draw() {
    const data = this.data;
    const width = Math.max(120, Math.floor(this.container.clientWidth));
    const height = this.height;
    const svg = this.svg;
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    if (!data) return;
    const points = data.series.flatMap((s) => s.points).filter((p) => p[1] !== null && p[1] !== undefined);
    if (data.band) points.push(...data.band.lower, ...data.band.upper);
    if (!points.length) {
      const text = node("text", { x: width / 2, y: height / 2, class: "chart-empty", "text-anchor": "middle" });
      text.textContent = data.empty || "No data yet";
      svg.append(text);
      return;
    }
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    let xMin = data.x.min ?? Math.min(...xs);
    let xMax = data.x.max ?? Math.max(...xs);
    let yMin = data.y.min ?? Math.min(...ys);
    let yMax = data.y.max ?? Math.max(...ys);
    if (xMax === xMin) { xMin -= 1; xMax += 1; }
    if (yMax === yMin) { const pad = Math.abs(yMax) * 0.001 || 1; yMin -= pad; yMax += pad; }
    else if (data.y.min === undefined) { const pad = (yMax - yMin) * 0.08; yMin -= pad; yMax += pad; }
    const plotH = height - MARGIN.top - MARGIN.bottom;
    const yTicks = niceTicks(yMin, yMax, Math.max(2, Math.floor(plotH / 40)));
    const left = Math.max(MARGIN.left, 12 + 7 * Math.max(...yTicks.map((t) => data.y.format(t).length)));
    const plotW = width - left - MARGIN.right;
    const sx = (x) => left + ((x - xMin) / (xMax - xMin)) * plotW;
    const sy = (y) => MARGIN.top + (1 - (y - yMin) / (yMax - yMin)) * plotH;
    const grid = node("g", { class: "chart-grid" });
    for (const tick of yTicks) {
      grid.append(node("line", { x1: left, x2: width - MARGIN.right, y1: sy(tick), y2: sy(tick) }));
      const text = node("text", { x: left - 6, y: sy(tick) + 4, "text-anchor": "end" });
      text.textContent = data.y.format(tick);
      grid.append(text);
    }
    const xTicks = data.x.ticks ? data.x.ticks(xMin, xMax) : niceTicks(xMin, xMax, Math.max(2, Math.floor(plotW / 90)));
    for (const tick of xTicks) {
      if (tick < xMin || tick > xMax) continue;
      const x = sx(tick);
      if (x < left + 24 || x > width - 24) continue; // its label would overlap the axis or be cut
      const text = node("text", { x, y: height - 6, "text-anchor": "middle" });
      text.textContent = data.x.format(tick);
      grid.append(text);
    }
    svg.append(grid);
    if (data.band && data.band.lower.length) {
      const path = [...data.band.upper.map((p) => [sx(p[0]), sy(p[1])]),
        ...[...data.band.lower].reverse().map((p) => [sx(p[0]), sy(p[1])])];
      svg.append(node("path", { d: `M${path.map((p) => p.join(",")).join("L")}Z`, class: "chart-band" }));
    }
    for (const series of data.series) this.drawSeries(svg, series, sx, sy, plotH);
    for (const marker of data.markers || []) {
      if (marker.x < xMin || marker.x > xMax) continue;
      svg.append(node("line", { x1: sx(marker.x), x2: sx(marker.x), y1: MARGIN.top, y2: MARGIN.top + plotH, class: "chart-marker" }));
      const text = node("text", { x: sx(marker.x) + 4, y: MARGIN.top + plotH - 4, class: "chart-marker-label" });
      text.textContent = marker.label;
      svg.append(text);
    }
    this.drawLegend(svg, data.series.filter((s) => s.label), width);
  }

  drawSeries(svg, series, sx, sy, plotH) {
    const points = series.points.filter((p) => p[1] !== null && p[1] !== undefined);
    if (!points.length) return;
    const cls = `series ${series.cls || ""}`;
    if (series.kind === "dots") {
      const group = node("g", { class: cls });
      for (const p of points) group.append(node("circle", { cx: sx(p[0]), cy: sy(p[1]), r: series.radius || 2.5 }));
      svg.append(group);
      return;
    }
    if (series.kind === "bars") {
      const group = node("g", { class: cls });
      const barW = Math.max(1, (sx(points[points.length - 1][0]) - sx(points[0][0])) / Math.max(points.length, 1) - 1);
      const base = MARGIN.top + plotH;
      for (const p of points) {
        const y = sy(p[1]);
        group.append(node("rect", { x: sx(p[0]) - barW / 2, y, width: barW, height: Math.max(0, base - y) }));
      }
      svg.append(group);
      return;
    }
    let d = "";
    points.forEach((p, i) => {
      const x = sx(p[0]);
      const y = sy(p[1]);
      if (i === 0) d += `M${x},${y}`;
      else if (series.kind === "step") d += `H${x}V${y}`;
      else d += `L${x},${y}`;
    });
    if (series.kind === "area") {
      const base = MARGIN.top + plotH;
      svg.append(node("path", { d: `${d}V${base}H${sx(points[0][0])}Z`, class: `${cls} area` }));
    } else {
      svg.append(node("path", { d, class: `${cls} line` }));
    }
  }

  drawLegend(svg, series, width) {
    let x = width - MARGIN.right;
    for (const s of [...series].reverse()) {
      const text = node("text", { x, y: MARGIN.top + 2, "text-anchor": "end", class: `legend ${s.cls || ""}` });
      text.textContent = `● ${s.label}`;
      svg.append(text);
      x -= s.label.length * 7 + 22;
    }
  }
}

export function timeTicks(min, max) {
  const span = max - min;
  const steps = [1e3, 5e3, 10e3, 15e3, 30e3, 60e3, 300e3, 600e3, 1800e3, 3600e3];
  const step = steps.find((s) => span / s <= 6) || 3600e3;
  const ticks = [];
  for (let t = Math.ceil(min / step) * step; t <= max; t += step) ticks.push(t);
  return ticks;
}

export function clockLabel(ms) {
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
}
