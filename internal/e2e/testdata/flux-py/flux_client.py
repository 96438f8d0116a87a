"""Streams a WAV file to a Deepgram Flux endpoint (GET /v2/listen) with Deepgram's
official Python SDK, unmodified, and prints what the SDK hands back.

Used by internal/e2e TestFluxOfficialSDK against `earshot serve`: the SDK is pointed at
the server with its documented environment option, authenticates with an API key
(Authorization: Token …) and streams the audio in real time. With --configure-after-ms
it sends a Configure message (new thresholds) through the SDK's typed send_configure
that far into the audio; with --force-end-turn it sends ForceEndTurn through the SDK's
typed send_force_end_turn right after the last audio and waits for an EndOfTurn (at
most --force-timeout seconds). Last it sends CloseStream (send_close_stream).

Every line on stdout is one JSON object:
  {"t": S, "sdk_type": "ListenV2TurnInfo", "msg": {...}}  a message, as the SDK typed it
  {"t": S, "error": "..."}                                 anything the SDK or the schema rejected
  {"t": S, "sent": "Configure", "control": {...}}         a control message, as sent, just before it is
  {"t": S, "closed": true}                                 the SDK's close event
  {"t": S, "done": true, "sdk_version": V, "sent_bytes": N, "errors": N}   last line
t is seconds since the client began to connect. Exit status 1 when any error was seen.

The SDK parses leniently: it tries its pydantic model for a message and falls back to an
unchecked copy, or drops a message it cannot type with only a log warning. So every
typed message is validated again with the SDK's own model class (deepgram's
parse_obj_as), and the SDK's warnings count as errors: a field Earshot sends with the
wrong type, or a missing one, shows up as an error line naming the field.
"""

import argparse
import json
import logging
import sys
import threading
import time
import warnings
import wave

from deepgram import DeepgramClient
from deepgram.core.events import EventType
from deepgram.core.pydantic_utilities import parse_obj_as
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v2.types import (
    ListenV2Configure,
    ListenV2ConfigureFailure,
    ListenV2ConfigureSuccess,
    ListenV2ConfigureThresholds,
    ListenV2Connected,
    ListenV2FatalError,
    ListenV2ForceEndTurn,
    ListenV2TurnInfo,
    ListenV2Warning,
)

try:
    from deepgram.version import __version__ as SDK_VERSION
except ImportError:  # pragma: no cover
    SDK_VERSION = "unknown"

KNOWN = (ListenV2Connected, ListenV2TurnInfo, ListenV2ConfigureSuccess, ListenV2ConfigureFailure,
         ListenV2Warning, ListenV2FatalError)


class Out:
    """Thread-safe JSON-lines writer; counts errors."""

    def __init__(self):
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.errors = 0

    def line(self, **kv):
        kv = {"t": round(time.monotonic() - self.t0, 3), **kv}
        with self.lock:
            if "error" in kv:
                self.errors += 1
            sys.stdout.write(json.dumps(kv) + "\n")
            sys.stdout.flush()


class SDKLogErrors(logging.Handler):
    """Turns the SDK's warnings (a message it skipped, say) into error lines."""

    def __init__(self, out):
        super().__init__(logging.WARNING)
        self.out = out

    def emit(self, record):
        self.out.line(error="sdk log %s: %s: %s" % (record.levelname, record.name, record.getMessage()))


def on_message(out, msg, end_of_turn):
    if isinstance(msg, (bytes, bytearray)):
        out.line(error="binary message of %d bytes" % len(msg))
        return
    if not isinstance(msg, KNOWN):
        out.line(error="the SDK did not type a message: %r" % (msg,))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydantic's serializer warns on a field of the wrong type
        try:
            dump = msg.model_dump(mode="python", by_alias=True)
            parse_obj_as(type(msg), dump)
        except Exception as e:  # the SDK's own model refuses what the server sent
            out.line(error="%s does not match the SDK's schema: %s" % (type(msg).__name__, e), sdk_type=type(msg).__name__)
            return
    out.line(sdk_type=type(msg).__name__, msg=msg.model_dump(mode="json", by_alias=True))
    if isinstance(msg, ListenV2TurnInfo) and msg.event == "EndOfTurn":
        end_of_turn.set()
    if isinstance(msg, ListenV2FatalError):
        out.line(error="Error message: %s: %s" % (msg.code, msg.description))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="the server's base URL, http://127.0.0.1:PORT")
    ap.add_argument("--key", required=True, help="API key (sent as Authorization: Token KEY)")
    ap.add_argument("--wav", required=True, help="16 kHz mono 16-bit WAV")
    ap.add_argument("--model", default="flux-general-en")
    ap.add_argument("--chunk-ms", type=int, default=50)
    ap.add_argument("--eager-eot-threshold", type=float, default=0.5)
    ap.add_argument("--eot-timeout-ms", type=int, default=1500)
    ap.add_argument("--configure-after-ms", type=int, default=0,
                    help="send Configure this far into the audio (0: never)")
    ap.add_argument("--configure-eot-threshold", type=float)
    ap.add_argument("--configure-eot-timeout-ms", type=int)
    ap.add_argument("--force-end-turn", action="store_true",
                    help="send ForceEndTurn after the last audio and wait for an EndOfTurn")
    ap.add_argument("--force-timeout", type=float, default=5.0)
    ap.add_argument("--close-timeout", type=float, default=30.0)
    args = ap.parse_args()

    out = Out()
    logging.getLogger("deepgram").addHandler(SDKLogErrors(out))

    with wave.open(args.wav, "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (16000, 1, 2):
            sys.exit("%s: want 16 kHz mono 16-bit, got %d Hz, %d channels, %d bytes a sample" % (
                args.wav, w.getframerate(), w.getnchannels(), w.getsampwidth()))
        pcm = w.readframes(w.getnframes())

    http = args.url.rstrip("/")
    ws = "ws" + http[len("http"):]
    env = DeepgramClientEnvironment(base=http, production=ws, agent=ws, agent_rest=http)
    client = DeepgramClient(api_key=args.key, environment=env)

    closed = threading.Event()
    end_of_turn = threading.Event()
    sent = 0
    out.t0 = time.monotonic()
    try:
        with client.listen.v2.connect(model=args.model, encoding="linear16", sample_rate=16000,
                                      eager_eot_threshold=args.eager_eot_threshold,
                                      eot_timeout_ms=args.eot_timeout_ms) as conn:
            conn.on(EventType.MESSAGE, lambda m: on_message(out, m, end_of_turn))
            conn.on(EventType.ERROR, lambda e: out.line(error="sdk error event: %s: %s" % (type(e).__name__, e)))
            conn.on(EventType.CLOSE, lambda _: (out.line(closed=True), closed.set()))
            listener = threading.Thread(target=conn.start_listening, daemon=True)
            listener.start()

            step = 16000 * 2 * args.chunk_ms // 1000
            configure_at = -1
            if args.configure_after_ms > 0:
                configure_at = args.configure_after_ms // args.chunk_ms
            start = time.monotonic()
            for i, off in enumerate(range(0, len(pcm), step)):
                if i == configure_at and not closed.is_set():
                    # Only the thresholds given change (the SDK sends an unset field as nothing).
                    given = {"eot_threshold": args.configure_eot_threshold,
                             "eot_timeout_ms": args.configure_eot_timeout_ms}
                    thresholds = ListenV2ConfigureThresholds(**{k: v for k, v in given.items() if v is not None})
                    configure = ListenV2Configure(type="Configure", thresholds=thresholds)
                    out.line(sent="Configure", control=configure.dict())  # first: the reply may come at once
                    conn.send_configure(configure)
                delay = start + i * args.chunk_ms / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if closed.is_set():
                    out.line(error="the stream closed while audio was being sent")
                    break
                conn.send_media(pcm[off:off + step])
                sent += len(pcm[off:off + step])
            if args.force_end_turn and not closed.is_set():
                end_of_turn.clear()
                force = ListenV2ForceEndTurn(type="ForceEndTurn")
                out.line(sent="ForceEndTurn", control=force.dict())
                conn.send_force_end_turn(force)
                if not end_of_turn.wait(args.force_timeout):
                    out.line(error="no EndOfTurn within %gs of ForceEndTurn" % args.force_timeout)
            if not closed.is_set():
                conn.send_close_stream()
            if not closed.wait(args.close_timeout):
                out.line(error="the server did not close the stream within %gs of CloseStream" % args.close_timeout)
    except Exception as e:
        out.line(error="%s: %s" % (type(e).__name__, e))
    out.line(done=True, sdk_version=SDK_VERSION, sent_bytes=sent, errors=out.errors)
    return 1 if out.errors else 0


if __name__ == "__main__":
    sys.exit(main())
