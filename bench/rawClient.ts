/**
 * `node dist/bench/rawClient.js`: the CPU the raw HTTP client (src/matrix/RawJsonClient.ts)
 * spends per call, as it is on the hot path (one call per IRC line relayed into Matrix). A
 * child process answers like Synapse answers a send (its headers, the JSON in one chunk, then
 * the last chunk), so the figures printed are the client's process alone: calls one after
 * another on the kept-alive socket, and process.cpuUsage() per call (user, system).
 *
 *   BENCH_CALLS=20000   calls measured (after BENCH_WARMUP=2000 unmeasured ones)
 *   BENCH_SPLIT=1       the server writes the last chunk apart (two reads per answer)
 */
import { fork } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { RawJsonClient, type RawAnswer } from "../src/matrix/RawJsonClient.js";

const HEAD =
  "HTTP/1.1 200 OK\r\nDate: Tue, 24 Nov 2026 13:00:00 GMT\r\nServer: Synapse/1.163.0\r\nContent-Type: application/json\r\n" +
  "Cache-Control: no-cache, no-store, must-revalidate\r\nAccess-Control-Allow-Origin: *\r\n" +
  "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, DELETE, OPTIONS\r\n" +
  "Access-Control-Allow-Headers: X-Requested-With, Content-Type, Authorization, Date\r\n" +
  "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nTransfer-Encoding: chunked\r\n\r\n";

function serve(): void {
  const split = process.env.BENCH_SPLIT === "1";
  let n = 0;
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("data", () => {
      const json = `{"event_id":"$${(n++).toString(36).padStart(8, "0")}abcdefghijklmnopqrstuvwxyz012345"}`;
      const answer = `${HEAD}${json.length.toString(16)}\r\n${json}\r\n`;
      if (split) {
        socket.write(answer);
        socket.write("0\r\n\r\n");
      } else socket.write(`${answer}0\r\n\r\n`);
    });
  });
  server.listen(0, "127.0.0.1", () => process.send?.((server.address() as AddressInfo).port));
  process.on("disconnect", () => process.exit(0));
}

async function measure(): Promise<void> {
  const calls = Number(process.env.BENCH_CALLS ?? 20_000);
  const warmup = Number(process.env.BENCH_WARMUP ?? 2_000);
  const child = fork(process.argv[1], ["serve"], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] });
  const port = await new Promise<number>((resolve) => child.once("message", (m) => resolve(Number(m))));
  const client = new RawJsonClient("127.0.0.1", port);
  const headers = "Authorization: Bearer syt_YWJj_abcdefghijklmnopqrst_012345\r\nContent-Type: application/json\r\n";
  const payload = Buffer.from('{"msgtype":"m.text","body":"a line from IRC, as long as a usual one is"}');
  const call = (i: number) =>
    new Promise<RawAnswer>((resolve, reject) =>
      client.request("PUT", `/_matrix/client/v3/rooms/!room%3Alocalhost/send/m.room.message/bench${i}?user_id=%40irc_bob%3Alocalhost`, headers, payload, (err, answer) =>
        err || !answer ? reject(err ?? new Error("no answer")) : resolve(answer),
      ),
    );
  for (let i = 0; i < warmup; i++) await call(i);
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < calls; i++) {
    const answer = await call(i);
    if (answer.status !== 200 || answer.body.length < 20) throw new Error(`unexpected answer ${answer.status} ${answer.body}`);
  }
  const wall = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const per = (us: number) => (us / calls).toFixed(2);
  console.log(`raw client, ${calls} calls${process.env.BENCH_SPLIT === "1" ? " (answers in two writes)" : ""}: ` + `${per(used.user + used.system)} µs CPU/call (user ${per(used.user)}, system ${per(used.system)}), ${((wall * 1000) / calls).toFixed(1)} µs wall/call`);
  child.disconnect();
}

if (process.argv[2] === "serve") serve();
else await measure();
