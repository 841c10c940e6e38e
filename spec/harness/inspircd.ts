/**
 * A throwaway InspIRCd 3 (Debian package) on loopback, with the IRCv3 modules loaded and
 * limits raised so hundreds of test connections from 127.0.0.1 are welcome.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { startLogged, stopProcess } from "./processes.js";
import { waitFor } from "./wait.js";

const MODULES = [
  "cap", "ircv3", "ircv3_servertime", "ircv3_msgid", "ircv3_ctctags", "ircv3_echomessage", "ircv3_batch",
  "ircv3_labeledresponse", "ircv3_accounttag", "ircv3_capnotify", "ircv3_chghost", "ircv3_invitenotify",
  "namesx", "uhnames", "setname", "monitor",
];

export const IRC_OPER = { name: "testoper", password: "operpass" };

export function inspircdBinary(): string {
  if (process.env.INSPIRCD_BIN) return process.env.INSPIRCD_BIN;
  for (const candidate of ["/usr/sbin/inspircd", "/usr/bin/inspircd"]) {
    try {
      execFileSync(candidate, ["--version"], { stdio: "ignore" });
      return candidate;
    } catch {
      // try the next
    }
  }
  throw new Error("InspIRCd is not installed; run scripts/install-test-deps.sh");
}

export interface InspIRCdOptions {
  /** Modules to leave out (e.g. ircv3_msgid). */
  withoutModules?: string[];
  /** Also listen on [::1] (same port). */
  ipv6?: boolean;
  /** Put "Quit: " before users' quit messages (default); off lets a test fake a netsplit quit. */
  quitPrefix?: boolean;
  /**
   * Keep InspIRCd's own flood control for clients (its default recvq, threshold, command rate
   * and fakelag) instead of lifting it, so a client that sends too fast is held back or thrown
   * out as on a real network.
   */
  floodLimits?: boolean;
  /** Modules to load besides the usual ones (e.g. sslmodes for +z, operchans for +O). */
  extraModules?: string[];
}

export class InspIRCd {
  private child: ChildProcess | null = null;
  port = 0;

  constructor(
    private readonly dir: string,
    private readonly options: InspIRCdOptions = {},
  ) {}

  private writeConfig(): string {
    mkdirSync(this.dir, { recursive: true });
    const file = join(this.dir, "inspircd.conf");
    writeFileSync(
      file,
      `<server name="irc.test" description="Test IRCd" network="TestNet">
<admin name="Test" nick="test" email="test@localhost">
<bind address="127.0.0.1" port="${this.port}" type="clients">
${this.options.ipv6 ? `<bind address="::1" port="${this.port}" type="clients">` : ""}
<class name="all" commands="*" usermodes="*" chanmodes="*" privs="*">
<type name="NetAdmin" classes="all">
<oper name="${IRC_OPER.name}" password="${IRC_OPER.password}" host="*@*" type="NetAdmin">
<connect name="main" allow="*" maxchans="200" timeout="30" pingfreq="120" hardsendq="10485760" softsendq="1048576"
  ${this.options.floodLimits ? "" : `recvq="1048576" threshold="100000" commandrate="1000000" fakelag="no"`} localmax="100000" globalmax="100000"
  limit="100000" useident="no" resolvehostnames="no" maxconnwarn="off">
<performance netbuffersize="10240" somaxconn="1024" softlimit="100000" clonesonconnect="no" timeskipwarn="0">
<security hidesplits="no" announceinvites="dynamic" allowcoreunload="no" hideserver="" maxtargets="20">
<limits maxchan="64" maxmodes="20" maxnick="30" maxuser="10" maxquit="255" maxtopic="307" maxkick="255" maxreal="128" maxaway="200">
<options prefixquit="${this.options.quitPrefix === false ? "" : "Quit: "}" syntaxhints="yes" defaultmodes="not" xlinemessage="Banned" allowzerolimit="no" exemptchanops="">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="${join(this.dir, "ircd.log")}">
<pid file="${join(this.dir, "inspircd.pid")}">
<dns server="127.0.0.1" timeout="1">
${[...MODULES, ...(this.options.extraModules ?? [])].filter((m) => !(this.options.withoutModules ?? []).includes(m)).map((m) => `<module name="${m}">`).join("\n")}
`,
    );
    return file;
  }

  async start(): Promise<void> {
    this.port ||= await freePort();
    const config = this.writeConfig();
    this.child = startLogged(inspircdBinary(), ["--nofork", "--runasroot", `--config=${config}`], join(this.dir, "stdout.log"));
    const child = this.child;
    await waitFor(
      "InspIRCd to accept connections",
      async () => {
        if (child.exitCode !== null) throw new Error(`InspIRCd exited with ${child.exitCode}; see ${this.dir}/stdout.log`);
        return new Promise<boolean>((resolve) => {
          const socket = createConnection({ host: "127.0.0.1", port: this.port }, () => {
            socket.destroy();
            resolve(true);
          });
          socket.on("error", () => resolve(false));
        });
      },
      20_000,
      100,
    );
  }

  async stop(): Promise<void> {
    await stopProcess(this.child, "SIGTERM", 5_000);
    this.child = null;
  }
}
