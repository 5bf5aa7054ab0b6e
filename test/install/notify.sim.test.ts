// The snapshotter under a systemd unit of Type=notify: READY=1 reaches $NOTIFY_SOCKET, and only once
// containerd could connect to the snapshotter's socket. Node has no unix datagram sockets, so the
// receiving end, standing in for systemd, is perl (perl-base is Essential in Debian): on every
// message it tries to connect to the snapshotter's socket at once and prints the message and
// whether that worked.

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const BIN = resolve(import.meta.dirname, '../../bin/thinlayer.js');

const RECEIVER = String.raw`
use strict; use IO::Socket::UNIX; use Socket;
my ($notify, $socket) = @ARGV;
my $in = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $notify) or die "bind $notify: $!";
$| = 1;
print "listening\n";
while (1) {
  my $message;
  defined($in->recv($message, 65536)) or die "recv: $!";
  my $client = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $socket);
  $message =~ s/\n/ /g;
  print "message $message connect ", ($client ? "ok" : "failed"), "\n";
  close $client if $client;
}
`;

const POOL = `version: 1
pool:
  name: notified
  data: { file: data.img, size: 1G }
  metadata: { file: metadata.img, size: 64M }
  baseSize: 256M
  filesystem: ext4
`;

/** The lines a child prints, as they come. */
function lines(child: ReturnType<typeof spawn>): AsyncIterator<string> {
  return createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
}

describe('the snapshotter under systemd', () => {
  it('sends READY=1 to NOTIFY_SOCKET once its socket answers', async () => {
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-notify-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const notify = join(root, 'notify.sock');
    const socket = join(root, 'snapshotter.sock');
    writeFileSync(join(root, 'pool.yaml'), POOL);

    const receiver = spawn('perl', ['-e', RECEIVER, notify, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => void receiver.kill('SIGKILL'));
    const heard = lines(receiver);
    expect((await heard.next()).value).toBe('listening');

    const snapshotter = spawn(
      process.execPath,
      [BIN, 'snapshotter', '-f', join(root, 'pool.yaml'), '--socket', socket, '--state-dir', join(root, 'state'), '--backend', 'sim', '--json'],
      {
        env: { ...process.env, NOTIFY_SOCKET: notify },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    snapshotter.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((done) => snapshotter.once('exit', (code) => done(code)));
    onTestFinished(() => void snapshotter.kill('SIGKILL'));

    const first = await Promise.race([heard.next(), exited.then((code) => ({ value: `snapshotter exited ${code}: ${stderr}` }))]);
    expect(first.value).toBe('message READY=1 connect ok');

    snapshotter.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/warn|error/i);
  }, 60_000);
});
