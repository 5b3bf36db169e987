"""An SMTP sink for hallpass's mail tests: a real SMTP server (aiosmtpd) on 127.0.0.1 that
writes every message it accepts to a folder, one file per message.

    sink.py --port PORT --dir DIR [--kill-pid PID] [--reject-rcpt SUBSTRING]

--kill-pid: on the first message, after the whole message arrived and before answering
250, kill that process with SIGKILL (a crash between SMTP acceptance and the outbox
update); the message is still written, as a real server that took it would keep it.
--reject-rcpt: answer 550 to RCPT TO addresses containing SUBSTRING.
Prints "ready" on stdout once it listens.
"""

import argparse
import asyncio
import os
import signal
import sys
import uuid

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder, kill_pid, reject):
        self.folder = folder
        self.kill_pid = kill_pid
        self.reject = reject
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject in address:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%06d-%s.eml" % (self.count, uuid.uuid4().hex)
        tmp = os.path.join(self.folder, "." + name)
        with open(tmp, "wb") as f:
            f.write(("X-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.folder, name))
        if self.kill_pid and self.count == 1:
            os.kill(self.kill_pid, signal.SIGKILL)
            await asyncio.sleep(0.5)
        return "250 OK queued"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--kill-pid", type=int, default=0)
    p.add_argument("--reject-rcpt", default="")
    a = p.parse_args()
    c = Controller(Sink(a.dir, a.kill_pid, a.reject_rcpt), hostname="127.0.0.1", port=a.port)
    c.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the test closes stdin or kills us
    finally:
        c.stop()


if __name__ == "__main__":
    main()
