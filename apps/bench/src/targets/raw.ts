// The limit: batch_sum on plain node:http, parsing and checking the same JSON, nothing else.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let numbers: unknown;
    try {
      numbers = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { numbers?: unknown })
        .numbers;
    } catch {
      numbers = undefined;
    }
    if (!Array.isArray(numbers) || !numbers.every((n) => typeof n === 'number')) {
      res.writeHead(400).end();
      return;
    }
    let total = 0;
    for (const n of numbers as number[]) total += n;
    const body = JSON.stringify({ count: numbers.length, total });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
// Exit on SIGTERM (instead of being killed by it), so that `node --cpu-prof` can write a profile.
process.on('SIGTERM', () => process.exit(0));
