"""Unit tests of vigil_logging against a small local HTTP receiver that misbehaves on purpose
(the end-to-end tests against a real Vigil are crates/vigil/tests/python_clients.rs)."""

import http.server
import json
import logging
import os
import tempfile
import threading
import unittest

from vigil_logging import VigilHandler, login_fail, security_event
from vigil_logging.handler import _Spool


class Receiver(http.server.ThreadingHTTPServer):
    """Answers 429 to the first `fail_first` posts, 400 to any batch with a line containing
    "poison", 200 otherwise; records every post."""

    def __init__(self, fail_first=0):
        self.posts = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        server = self.server
        with server.lock:
            server.posts.append((self.headers["Idempotency-Key"], self.headers["Authorization"], body))
            failing = server.fail_first > 0
            server.fail_first -= 1
        if failing:
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        if "poison" in body:
            self.send_response(400)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"stored":1}')


def logger(handler, name):
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


class HandlerTests(unittest.TestCase):
    def test_a_retried_batch_keeps_its_key_and_bytes(self):
        receiver = Receiver(fail_first=2)
        handler = VigilHandler(receiver.url, "T0K", batch_size=10, flush_interval=0.05, backoff_base=0.01)
        log = logger(handler, "t.retry")
        for i in range(5):
            log.info("event %d", i)
        self.assertTrue(handler.flush(10))
        handler.close()
        keys = [k for k, _, _ in receiver.posts]
        bodies = [b for _, _, b in receiver.posts]
        self.assertGreaterEqual(len(keys), 3)
        self.assertEqual(len(set(keys[:3])), 1, "the same batch goes again under the same key")
        self.assertEqual(len(set(bodies[:3])), 1)
        self.assertEqual(receiver.posts[0][1], "Bearer T0K")
        self.assertEqual(handler.stats.sent, 5)

    def test_a_refused_batch_drops_only_the_refused_event(self):
        receiver = Receiver()
        handler = VigilHandler(receiver.url, "T", batch_size=10, flush_interval=0.05)
        log = logger(handler, "t.refused")
        for i in range(4):
            log.info("ok %d", i)
        log.info("poison")
        self.assertTrue(handler.flush(10))
        handler.close()
        self.assertEqual(handler.stats.sent, 4)
        self.assertEqual(handler.stats.rejected, 1)

    def test_events_carry_unique_ids_and_the_vocabulary(self):
        receiver = Receiver()
        handler = VigilHandler(receiver.url, "T", service="shop", batch_size=100, flush_interval=0.05)
        log = logger(handler, "t.vocab")
        log.warning("login failed", extra=login_fail("alice", source_ip="203.0.113.5"))
        log.info("plain", extra={"order.id": 42})
        self.assertTrue(handler.flush(10))
        handler.close()
        events = [json.loads(l) for _, _, b in receiver.posts for l in b.splitlines()]
        self.assertEqual(len({e["event.id"] for e in events}), 2)
        login = events[0]
        self.assertEqual(login["event.action"], "authn_login_fail")
        self.assertEqual(login["event.code"], "authn_login_fail:alice")
        self.assertEqual(login["event.outcome"], "failure")
        self.assertEqual(login["log.level"], "warn")
        self.assertEqual(login["user.name"], "alice")
        self.assertEqual(login["source.ip"], "203.0.113.5")
        self.assertEqual(login["service.name"], "shop")
        self.assertEqual(events[1]["order.id"], 42)
        with self.assertRaises(TypeError):
            security_event("x", unknown_field=1)

    def test_an_unreachable_vigil_leaves_the_batches_in_the_spool(self):
        with tempfile.TemporaryDirectory() as spool:
            handler = VigilHandler("http://127.0.0.1:9", "T", spool_dir=spool, batch_size=3,
                                   flush_interval=0.05, backoff_base=0.01, timeout=1, close_timeout=0.5)
            log = logger(handler, "t.spool")
            for i in range(7):
                log.info("queued %d", i)
            handler.close()
            lines = []
            spool_files = _Spool(spool)
            while spool_files.pending():
                name = spool_files.oldest()
                lines += spool_files.read(name)
                spool_files.remove(name)
            self.assertEqual([json.loads(l)["message"] for l in lines], ["queued %d" % i for i in range(7)])

    def test_a_spool_has_one_process(self):
        with tempfile.TemporaryDirectory() as spool:
            receiver = Receiver()
            first = VigilHandler(receiver.url, "T", spool_dir=spool, flush_interval=0.05)
            with self.assertRaises(RuntimeError):
                VigilHandler(receiver.url, "T", spool_dir=spool)
            first.close()
            # Released on close: the next process may take it.
            VigilHandler(receiver.url, "T", spool_dir=spool).close()

    def test_nan_and_infinity_are_written_as_text(self):
        receiver = Receiver()
        handler = VigilHandler(receiver.url, "T", flush_interval=0.05)
        log = logger(handler, "t.nan")
        log.info("odd numbers", extra={"ratio": float("nan"), "big": float("inf")})
        self.assertTrue(handler.flush(10))
        handler.close()
        event = json.loads(receiver.posts[0][2].splitlines()[0])
        self.assertEqual((event["ratio"], event["big"]), ("nan", "inf"))

    def test_an_unreadable_spool_file_is_set_aside(self):
        with tempfile.TemporaryDirectory() as spool:
            with open(os.path.join(spool, "%020d.ndjson" % 1), "wb") as f:
                f.write(b"\xff\xfe not utf-8")
            receiver = Receiver()
            handler = VigilHandler(receiver.url, "T", spool_dir=spool, flush_interval=0.05)
            log = logger(handler, "t.bad")
            log.info("after")
            self.assertTrue(handler.flush(10))
            handler.close()
            self.assertTrue(os.path.exists(os.path.join(spool, "%020d.ndjson.bad" % 1)))
            self.assertEqual(handler.stats.sent, 1)


if __name__ == "__main__":
    unittest.main()
