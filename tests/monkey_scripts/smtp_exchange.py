"""smtplib sends mail to a minimal line-based SMTP server (socketserver, threads),
both in the patched process."""
from stolon import monkey

monkey.patch_all()

import email.message
import smtplib
import socketserver
import threading

received = []


class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        self.reply("220 tiny.local ESMTP ready")
        envelope = {"from": None, "to": []}
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb, _, argument = line.decode().rstrip("\r\n").partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-tiny.local greets %s" % argument)
                self.reply("250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 tiny.local")
            elif verb == "MAIL":
                envelope = {"from": argument.split(":", 1)[1].strip("<>"), "to": []}
                self.reply("250 OK")
            elif verb == "RCPT":
                envelope["to"].append(argument.split(":", 1)[1].strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                for data_line in self.rfile:
                    if data_line == b".\r\n":
                        break
                    lines.append(data_line[1:] if data_line.startswith(b"..") else data_line)
                received.append((envelope["from"], envelope["to"], b"".join(lines)))
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", 0), SMTPHandler)
serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
serving.start()
host, port = server.server_address


def send(n):
    message = email.message.EmailMessage()
    message["From"] = "sender%d@example.com" % n
    message["To"] = "a@example.com, b@example.com"
    message["Subject"] = "note %d" % n
    message.set_content("line one\n.leading dot\nnumber %d\n" % n)
    with smtplib.SMTP(host, port, timeout=5) as client:
        code, _ = client.noop()
        refused = client.send_message(message)
        return code, refused


results = {}
senders = [threading.Thread(target=lambda n=n: results.update({n: send(n)})) for n in range(3)]
for thread in senders:
    thread.start()
for thread in senders:
    thread.join()
print("results", [results[n] for n in range(3)])
for sender, recipients, body in sorted(received):
    parsed = email.message_from_bytes(body)
    print(sender, recipients, parsed["Subject"], parsed.get_payload().splitlines())
server.shutdown()
serving.join()
server.server_close()
print("server stopped", not serving.is_alive())
