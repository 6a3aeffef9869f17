// The node's JSON-RPC 2.0 API over one WebSocket: calls matched to replies by id, channel
// subscriptions that survive reconnects, credentials re-sent after a reconnect, and a
// reconnect with exponential backoff (with jitter) whenever the socket drops or goes silent.

const CALL_TIMEOUT_MS = 10_000;
const SILENCE_MS = 8_000; // venue.status arrives every block: this long without a message is a dead link
const BACKOFF_MS = [500, 1_000, 2_000, 4_000, 8_000, 15_000];
const CHANNELS_PER_REQUEST = 64;
const RESUBSCRIBE_MS = [1_000, 2_000, 4_000, 8_000]; // a refused subscription (rate limit, a slow node) is asked again

export class RpcError extends Error {
  constructor(code, message, data) {
    super(data && data.reason ? `${message}: ${data.reason}` : message);
    this.code = code;
    this.data = data;
  }
}

export class Connection {
  constructor(url) {
    this.url = url;
    this.socket = null;
    this.state = "idle"; // connecting | open | reconnecting | down
    this.attempt = 0;
    this.retryAt = 0;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject, timer}
    this.handlers = new Map(); // channel -> Set(handler)
    this.listeners = new Set(); // state listeners
    this.credentials = null;
    this.account = null;
    this.everOpened = false;
    this.lastMessage = 0;
    this.watchdog = null;
    this.retryTimer = null;
  }

  onState(listener) {
    this.listeners.add(listener);
    listener(this);
  }

  setState(state) {
    this.state = state;
    for (const listener of this.listeners) listener(this);
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.setState(this.everOpened ? "reconnecting" : "connecting");
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => this.opened(socket));
    socket.addEventListener("message", (event) => this.received(socket, event.data));
    socket.addEventListener("close", () => this.dropped(socket));
    socket.addEventListener("error", () => socket.close());
  }

  async opened(socket) {
    if (socket !== this.socket) return;
    this.lastMessage = Date.now();
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastMessage > SILENCE_MS) socket.close(4000, "silent");
    }, 1_000);
    try {
      if (this.credentials) await this.authenticate(this.credentials);
    } catch (error) {
      this.credentials = null;
      this.account = null;
      this.authError = error;
    }
    await this.subscribeAgain(socket, [...this.handlers.keys()]);
    this.attempt = 0;
    this.everOpened = true;
    this.setState("open");
  }

  received(socket, text) {
    if (socket !== this.socket) return;
    this.lastMessage = Date.now();
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.method === "subscription" && message.params) {
      const handlers = this.handlers.get(message.params.channel);
      if (handlers) for (const handler of handlers) handler(message.params.data, message.params.channel);
      return;
    }
    const waiting = this.pending.get(message.id);
    if (!waiting) return;
    this.pending.delete(message.id);
    clearTimeout(waiting.timer);
    if (message.error) {
      waiting.reject(new RpcError(message.error.code, message.error.message, message.error.data));
    } else {
      waiting.resolve(message.result);
    }
  }

  dropped(socket) {
    if (socket !== this.socket) return;
    clearInterval(this.watchdog);
    this.socket = null;
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new RpcError(-1, "connection lost"));
      this.pending.delete(id);
    }
    this.scheduleRetry();
  }

  scheduleRetry() {
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState(this.everOpened && this.attempt <= 2 ? "reconnecting" : "down");
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  retryNow() {
    if (this.state === "open" || this.state === "connecting") return;
    this.connect();
  }

  call(method, params = {}) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RpcError(-1, "not connected to the node"));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError(-2, `no answer to ${method} in ${CALL_TIMEOUT_MS / 1000}s`));
      }, CALL_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN && this.state === "open";
  }

  async authenticate(credentials) {
    const result = await this.call("public/auth", {
      grant_type: "client_credentials",
      client_id: credentials.clientId,
      client_secret: credentials.clientSecret,
    });
    this.credentials = credentials;
    this.authError = null;
    this.account = result;
    return result;
  }

  async logout() {
    const privateChannels = [...this.handlers.keys()].filter(isPrivate);
    for (const channel of privateChannels) this.handlers.delete(channel);
    this.credentials = null;
    this.account = null;
    if (this.socket) this.socket.close(4001, "logout"); // a fresh, unauthenticated session
  }

  // Subscribe ``handler`` to ``channel``; the subscription is renewed after every reconnect.
  subscribe(channel, handler) {
    let handlers = this.handlers.get(channel);
    const fresh = !handlers;
    if (fresh) {
      handlers = new Set();
      this.handlers.set(channel, handlers);
    }
    handlers.add(handler);
    if (fresh && this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.subscribeAgain(this.socket, [channel]);
    }
    return () => this.unsubscribe(channel, handler);
  }

  unsubscribe(channel, handler) {
    const handlers = this.handlers.get(channel);
    if (!handlers) return;
    handlers.delete(handler);
    if (handlers.size) return;
    this.handlers.delete(channel);
    if (this.isOpen) {
      const method = isPrivate(channel) ? "private/unsubscribe" : "public/unsubscribe";
      this.call(method, { channels: [channel] }).catch(() => {});
    }
  }

  // Subscribe ``channels`` on ``socket``; a refusal is retried with backoff while the socket
  // lasts and a handler still wants the channel (a page must not stay blank after one 10028).
  async subscribeAgain(socket, channels, attempt = 0) {
    try {
      await this.sendSubscriptions(channels);
    } catch (error) {
      console.warn("subscribe failed", channels.join(" "), error.message);
      const wanted = () => channels.filter((c) => this.handlers.has(c));
      const delay = RESUBSCRIBE_MS[Math.min(attempt, RESUBSCRIBE_MS.length - 1)];
      setTimeout(() => {
        if (socket === this.socket && socket.readyState === WebSocket.OPEN && wanted().length) {
          this.subscribeAgain(socket, wanted(), attempt + 1);
        }
      }, delay);
    }
  }

  async sendSubscriptions(channels) {
    const publicOnes = channels.filter((c) => !isPrivate(c));
    const privateOnes = this.credentials ? channels.filter(isPrivate) : [];
    const calls = [];
    for (const [method, list] of [["public/subscribe", publicOnes], ["private/subscribe", privateOnes]]) {
      for (let i = 0; i < list.length; i += CHANNELS_PER_REQUEST) {
        calls.push(this.call(method, { channels: list.slice(i, i + CHANNELS_PER_REQUEST) }));
      }
    }
    await Promise.all(calls);
  }
}

function isPrivate(channel) {
  return channel.startsWith("user.");
}
