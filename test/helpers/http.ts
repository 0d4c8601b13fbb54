import * as http from 'node:http';

export interface HttpReply {
  status: number;
  text: string;
  headers: http.IncomingHttpHeaders;
}

/** One plain HTTP request to a local server, its whole answer as text. */
export function httpRequest(
  url: string,
  options: { method?: string; body?: Buffer | string; headers?: Record<string, string | number> } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
