// A minimal HTTP/1.1 keep-alive client over one socket, for the load loops: requests are
// serialized by hand and responses parsed just enough (status, Content-Length or chunked body),
// which costs the load generator far less CPU than fetch on a 2-core machine shared with the
// server. One request at a time per connection (no pipelining). Local server only.

import { connect, type Socket } from 'node:net';

export interface Http1Response {
  readonly status: number;
  readonly body: string;
}

interface Pending {
  resolve: (r: Http1Response) => void;
  reject: (e: Error) => void;
}

export class Http1Connection {
  #socket: Socket;
  #buf: Buffer = Buffer.alloc(0);
  #pending: Pending | null = null;
  #closed: Error | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.#socket = connect({ host, port, noDelay: true });
    this.#socket.on('data', (d: Buffer) => {
      this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
      this.#parse();
    });
    const fail = (e: Error) => {
      this.#closed = e;
      this.#pending?.reject(e);
      this.#pending = null;
    };
    this.#socket.on('error', fail);
    this.#socket.on('close', () => fail(new Error('connection closed')));
  }

  request(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<Http1Response> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (this.#pending) return Promise.reject(new Error('one request at a time per connection'));
    const payload = body === undefined ? null : Buffer.from(body, 'utf8');
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\nconnection: keep-alive\r\n`;
    for (const [k, v] of Object.entries(headers))
      if (payload !== null || k !== 'content-type') head += `${k}: ${v}\r\n`;
    head += payload === null ? '\r\n' : `content-length: ${payload.length}\r\n\r\n`;
    return new Promise<Http1Response>((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#socket.write(payload === null ? head : Buffer.concat([Buffer.from(head, 'latin1'), payload]));
    });
  }

  #parse(): void {
    if (!this.#pending) return;
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.#buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let body: string;
    let consumed: number;
    if (length) {
      const n = Number(length[1]);
      if (this.#buf.length < end + 4 + n) return;
      body = this.#buf.toString('utf8', end + 4, end + 4 + n);
      consumed = end + 4 + n;
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const parts: Buffer[] = [];
      let at = end + 4;
      for (;;) {
        const eol = this.#buf.indexOf('\r\n', at);
        if (eol < 0) return;
        const size = parseInt(this.#buf.toString('latin1', at, eol), 16);
        if (this.#buf.length < eol + 2 + size + 2) return;
        if (size === 0) {
          consumed = eol + 4;
          break;
        }
        parts.push(this.#buf.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts).toString('utf8');
    } else {
      body = '';
      consumed = end + 4;
    }
    this.#buf = this.#buf.subarray(consumed);
    const p = this.#pending;
    this.#pending = null;
    p.resolve({ status, body });
  }

  close(): void {
    this.#closed = new Error('closed');
    this.#socket.destroy();
  }
}
