// @earshot/sdk: a client for Earshot's live transcription WebSocket, which speaks
// Deepgram's live-streaming protocol. Works in browsers and in Node (pass a
// WebSocket constructor such as the `ws` package's where there is no global one).
//
// Stream time: every time in the events (start, end, word times) is seconds of audio
// since the first sample given to sendAudio, across reconnects.
export class EarshotError extends Error {
    constructor(code, message, o = {}) {
        super(message);
        this.name = "EarshotError";
        this.code = code;
        this.status = o.status;
        this.closeCode = o.closeCode;
        this.fatal = o.fatal ?? true;
    }
    /** Whether trying again later can help (capacity, stream limits, network). */
    get retryable() {
        return RETRYABLE.has(this.code);
    }
}
const RETRYABLE = new Set([
    "NO_CAPACITY", "TOO_MANY_STREAMS", "SHUTTING_DOWN", "UNREACHABLE", "CONNECTION_LOST", "INTERNAL",
    "RATE_LIMITED", "IDLE_TIMEOUT", "CONNECTION_REFUSED", "SLOW_CONSUMER",
]);
/** What the server's close codes mean (gateway/wire/codes.go). */
const CLOSE_CODES = {
    1008: "SLOW_CONSUMER", 1009: "MESSAGE_TOO_LARGE", 1011: "INTERNAL", 1012: "SHUTTING_DOWN",
    1013: "NO_CAPACITY", 4001: "IDLE_TIMEOUT", 4002: "QUOTA_EXHAUSTED", 4003: "MAX_DURATION",
    4004: "BAD_AUDIO", 4029: "TOO_MANY_STREAMS",
};
/** HTTP statuses of a refused upgrade, when the body did not say. */
const HTTP_STATUS = {
    400: "BAD_REQUEST", 401: "INVALID_AUTH", 402: "QUOTA_EXHAUSTED", 403: "MODEL_NOT_IN_PLAN",
    404: "NOT_FOUND", 429: "TOO_MANY_STREAMS", 500: "INTERNAL", 502: "INTERNAL", 503: "NO_CAPACITY",
};
/** Codes after which reconnecting cannot help. */
const FATAL = new Set([
    "INVALID_AUTH", "UNKNOWN_MODEL", "MODEL_NOT_IN_PLAN", "INSUFFICIENT_BALANCE", "QUOTA_EXHAUSTED",
    "BAD_AUDIO", "MESSAGE_TOO_LARGE", "MAX_DURATION", "BAD_REQUEST", "NOT_FOUND", "TOKEN",
]);
const MESSAGES = {
    QUOTA_EXHAUSTED: "The usage quota is used up.",
    INSUFFICIENT_BALANCE: "The account has no balance left.",
    TOO_MANY_STREAMS: "Too many streams are open for this account.",
    NO_CAPACITY: "The server has no free transcription capacity right now.",
    SHUTTING_DOWN: "The server is restarting.",
    INVALID_AUTH: "The credentials were refused.",
    UNREACHABLE: "The server cannot be reached.",
};
/** The wait before reconnect attempt n (1, 2, …): 250 ms doubling up to 8 s, ±25 % jitter. */
const backoffMs = (attempt) => Math.min(8000, 250 * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
/** Kills a socket as a network fault would (ws's terminate; a browser socket can only close). */
function cutSocket(sock) {
    const s = sock;
    if (!s)
        return;
    if (typeof s.terminate === "function")
        s.terminate();
    else
        s.close(4000, "test drop");
}
const now = () => (typeof performance !== "undefined" ? performance.now() : Date.now());
function bytesPerSample(enc) {
    switch (enc) {
        case "linear32":
        case "float32":
            return 4;
        case "mulaw":
        case "alaw":
            return 1;
    }
    return 2;
}
// Scripts written without spaces between words: Han (Chinese, Japanese kanji), kana,
// Thai, Lao, Khmer, Myanmar, and the CJK punctuation and full-width forms.
const NO_SPACE = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}\u3000-\u303f\uff00-\uffef]/u;
/**
 * joinText appends text b to text a, the way a transcript continues: with one space
 * between them, except where either side of the join is in a script written without
 * spaces (Chinese, Japanese, Thai, …), so that "广州市" + "房地产" is "广州市房地产"
 * while "ask not" + "what" is "ask not what". An empty side adds nothing.
 */
export function joinText(a, b) {
    if (!a)
        return b;
    if (!b)
        return a;
    const last = Array.from(a.trimEnd().slice(-2)).pop() ?? ""; // two UTF-16 units: one code point
    const first = Array.from(b.trimStart().slice(0, 2))[0] ?? "";
    if (/\s$/.test(a) || /^\s/.test(b) || NO_SPACE.test(last) || NO_SPACE.test(first))
        return a + b;
    return a + " " + b;
}
/** listenURL builds the /v1/listen URL (without credentials) from the options. */
export function listenURL(o) {
    let base = o.url.replace(/^http/i, "ws");
    if (!/\/v1\/listen\/?$/.test(base.split("?")[0]))
        base = base.replace(/\/+$/, "") + "/v1/listen";
    const u = new URL(base);
    const q = u.searchParams;
    if (o.model)
        q.set("model", o.model);
    if (o.language)
        q.set("language", o.language);
    q.set("encoding", o.encoding ?? "linear16");
    q.set("sample_rate", String(o.sampleRate ?? 16000));
    q.set("channels", String(o.channels ?? 1));
    q.set("interim_results", String(o.interimResults ?? true));
    q.set("vad_events", String(o.vadEvents ?? true));
    if (o.endpointing !== undefined)
        q.set("endpointing", o.endpointing === false ? "false" : String(o.endpointing));
    if (o.utteranceEndMs !== undefined)
        q.set("utterance_end_ms", String(o.utteranceEndMs));
    for (const t of o.keyterms ?? [])
        q.append("keyterm", t);
    return u.toString();
}
/** Parse an HTTP error body ({err_code, err_msg} or {code, message}). */
function httpError(status, body) {
    const b = (body && typeof body === "object" ? body : {});
    const code = String(b.err_code ?? b.code ?? HTTP_STATUS[status] ?? "CONNECTION_REFUSED");
    const msg = String(b.err_msg ?? b.message ?? MESSAGES[code] ?? `The server refused the connection (HTTP ${status}).`);
    return new EarshotError(code, msg, { status });
}
/**
 * Why was a socket refused before it opened? Node's ws says the status in the
 * error message; browsers hide it, so ask the server: a plain GET of the same URL
 * with the same credentials runs the same admission checks and answers their
 * status and JSON body, or 426 when they all pass (docs/api.md). The probe cannot
 * see transcriber capacity, so a 426 after a refused upgrade most likely means
 * NO_CAPACITY; it is reported as CONNECTION_REFUSED, which is retried.
 */
async function probeRefusal(ev, url, tok, fetchFn) {
    const msg = String(ev?.message ?? "");
    const m = /Unexpected server response: (\d+)/.exec(msg);
    if (m)
        return httpError(Number(m[1]), {});
    if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET/.test(msg)) {
        return new EarshotError("UNREACHABLE", MESSAGES.UNREACHABLE + " " + msg);
    }
    const f = fetchFn ?? globalThis.fetch;
    if (!f)
        return new EarshotError("CONNECTION_REFUSED", "The WebSocket connection failed.");
    const ac = typeof AbortController !== "undefined" ? new AbortController() : undefined;
    const timer = setTimeout(() => ac?.abort(), 5000);
    try {
        const res = await f(url.replace(/^ws/i, "http"), {
            headers: { Authorization: "Bearer " + tok }, cache: "no-store", signal: ac?.signal,
        });
        let body = {};
        try {
            body = await res.json();
        }
        catch {
            /* not JSON */
        }
        const e = httpError(res.status, body);
        // 426: every check passed. An older server answers 400 "send an Upgrade request"
        // to any plain GET; that says nothing about why the socket was refused.
        if (res.ok || res.status === 426 || (res.status === 400 && /upgrade/i.test(e.message))) {
            return new EarshotError("CONNECTION_REFUSED", "The server refused the WebSocket connection; most likely it has no free transcription capacity right now.");
        }
        return e;
    }
    catch {
        return new EarshotError("UNREACHABLE", MESSAGES.UNREACHABLE);
    }
    finally {
        clearTimeout(timer);
    }
}
/**
 * connect opens a live transcription stream. It returns at once; audio given to
 * sendAudio before the socket opens is sent when it does. Events: open, partial,
 * final, speechstart, utteranceend, metadata, error, reconnecting, close.
 *
 * Reconnection: after an unexpected close (network, server restart, no capacity)
 * the connection gets a fresh token from getToken, reopens, and resends the audio
 * after the last delivered final, so no speech is lost; finals (and words) that end
 * at or before the last delivered final are dropped, so none is delivered twice.
 */
export function connect(opts) {
    const maybeWS = opts.WebSocket ?? globalThis.WebSocket;
    if (!maybeWS)
        throw new EarshotError("BAD_REQUEST", "no WebSocket constructor: pass options.WebSocket (e.g. the ws package) in Node < 22");
    const WS = maybeWS;
    if (!opts.token && !opts.getToken)
        throw new EarshotError("TOKEN", "connect needs token or getToken");
    const url = listenURL(opts);
    const enc = opts.encoding ?? "linear16";
    const bytesPerSecond = bytesPerSample(enc) * (opts.channels ?? 1) * (opts.sampleRate ?? 16000);
    const reconnect = opts.reconnect ?? true;
    const maxReconnects = opts.maxReconnects ?? 6;
    const maxBuffer = opts.maxBufferSeconds ?? 120;
    const resumeContext = Math.max(0, opts.resumeContextSeconds ?? 3);
    const keepAliveMs = opts.keepAliveMs ?? 4000;
    const listeners = new Map();
    const emit = (type, ev) => {
        for (const fn of [...(listeners.get(type) ?? [])]) {
            try {
                fn(ev);
            }
            catch (e) {
                setTimeout(() => { throw e; });
            }
        }
    };
    let state = "connecting";
    let sock = null;
    let attempt = 0; // consecutive failed attempts
    let sessions = 0; // sockets opened so far
    let offset = 0; // stream time at which the current server session's time 0 lies
    let sent = 0; // stream seconds given to sendAudio
    let finalEnd = 0; // stream time up to which finals were delivered
    let resumeFrom = 0; // where a reconnect resends from: a pause at least resumeContext before finalEnd
    let pauses = []; // ends of delivered finals after resumeFrom, oldest first
    let requestId = "";
    // request_id of the first connection, from its first result: a reconnect names it
    // (resume, resume_offset_ms) so that the server bills the resent audio once.
    let streamId = "";
    let chunks = []; // audio after finalEnd, oldest first
    let lastWords = 0; // words in the last result of the current segment
    let lastSend = now();
    let keepAlive;
    let closeWaiters = [];
    let closing = false;
    let lastError;
    let pendingFinalize = false;
    let token = opts.token;
    const trim = () => {
        // Keep the audio a reconnect resends: from resumeFrom (context before the last
        // final) on, at most maxBuffer seconds of it.
        while (pauses.length > 0 && pauses[0] <= finalEnd - resumeContext)
            resumeFrom = pauses.shift();
        let i = 0;
        while (i < chunks.length && (chunks[i].end <= resumeFrom || sent - chunks[i].start > maxBuffer + resumeContext))
            i++;
        if (i > 0)
            chunks = chunks.slice(i);
    };
    // Seconds of buffered audio not yet covered by a final (the context before it does not count).
    const pending = () => chunks.reduce((s, c) => s + Math.max(0, c.end - Math.max(c.start, finalEnd)), 0);
    // When the audio at stream time t was (last) sent, for the latency estimate.
    const sentAt = (t) => {
        for (let i = chunks.length - 1; i >= 0; i--) {
            const c = chunks[i];
            if (c.start <= t + 1e-6)
                return c.sentAt >= 0 ? c.sentAt : undefined;
        }
        return undefined;
    };
    const finish = (code, reason, err) => {
        if (state === "closed")
            return;
        state = "closed";
        if (keepAlive)
            clearInterval(keepAlive);
        chunks = [];
        emit("close", { code, reason, error: err });
        for (const w of closeWaiters)
            w();
        closeWaiters = [];
    };
    const fail = (err, code, reason) => {
        lastError = err;
        const canRetry = reconnect && !closing && !FATAL.has(err.code) && attempt < maxReconnects && state !== "closed";
        if (!canRetry) {
            emit("error", err);
            finish(code, reason, err);
            return;
        }
        attempt++;
        state = "reconnecting";
        const delayMs = backoffMs(attempt);
        emit("reconnecting", { attempt, delayMs, bufferedSeconds: pending(), error: err });
        setTimeout(open, delayMs);
    };
    const diagnose = (ev, tok) => probeRefusal(ev, url, tok, opts.fetch);
    const deliver = (m) => {
        const ch = (m.channel ?? {});
        const alt = ch.alternatives?.[0] ?? {};
        const start = offset + Number(m.start ?? 0);
        const end = start + Number(m.duration ?? 0);
        const isFinal = Boolean(m.is_final);
        let words = (alt.words ?? []).map((w) => ({ ...w, start: w.start + offset, end: w.end + offset }));
        let transcript = String(alt.transcript ?? "");
        // After a resend, the first results repeat audio whose finals were delivered.
        if (finalEnd > 0 && start < finalEnd - 1e-3) {
            if (words.length > 0) {
                const kept = words.filter((w) => (w.start + w.end) / 2 > finalEnd);
                if (kept.length !== words.length) {
                    words = kept;
                    transcript = kept.reduce((t, w) => joinText(t, w.punctuated_word ?? w.word), "");
                }
            }
            else if (end <= finalEnd + 0.05) {
                transcript = "";
            }
            // Results that lie wholly in the resent context are not delivered again.
            if (words.length === 0 && transcript === "" && end <= finalEnd + 0.05)
                return;
        }
        const newWords = words.length > lastWords || (words.length === 0 && transcript !== "" && lastWords === 0);
        const t = sentAt(end);
        if (streamId === "" && sessions === 1) {
            const rid = m.metadata?.request_id;
            if (typeof rid === "string")
                streamId = rid;
        }
        const ev = {
            transcript, words, start, end, confidence: Number(alt.confidence ?? 0), isFinal,
            speechFinal: Boolean(m.speech_final), fromFinalize: Boolean(m.from_finalize),
            latencyMs: t === undefined ? undefined : Math.max(0, now() - t), newWords,
            requestId: String(m.metadata?.request_id ?? requestId), raw: m,
        };
        const detected = ch.detected_language ?? alt.languages?.[0];
        if (typeof detected === "string" && detected !== "")
            ev.detectedLanguage = detected;
        if (isFinal) {
            if (end > finalEnd) {
                finalEnd = end;
                pauses.push(end);
            }
            lastWords = 0;
            trim();
            emit("final", ev);
        }
        else {
            lastWords = words.length;
            emit("partial", ev);
        }
    };
    const onMessage = (data) => {
        if (typeof data !== "string")
            return;
        let m;
        try {
            m = JSON.parse(data);
        }
        catch {
            return;
        }
        switch (m.type) {
            case "Results":
                deliver(m);
                break;
            case "SpeechStarted":
                emit("speechstart", { timestamp: offset + Number(m.timestamp ?? 0) });
                break;
            case "UtteranceEnd":
                emit("utteranceend", { lastWordEnd: offset + Number(m.last_word_end ?? 0) });
                break;
            case "Metadata":
                if (typeof m.request_id === "string")
                    requestId = m.request_id;
                emit("metadata", m);
                break;
            case "Error": {
                const code = String(m.code ?? "INTERNAL");
                const warn = code === "TOO_FAST" || code === "UNKNOWN_MESSAGE";
                const e = new EarshotError(code, String(m.description ?? code), { fatal: !warn });
                if (warn)
                    emit("error", e);
                else
                    lastError = e; // the close that follows reports it
                break;
            }
        }
    };
    const sendNow = (c) => {
        if (!sock || sock.readyState !== 1)
            return;
        sock.send(c.data);
        c.sentAt = now();
        lastSend = c.sentAt;
    };
    async function open() {
        if (state === "closed")
            return;
        let tok;
        try {
            tok = opts.getToken && (sessions > 0 || attempt > 0 || !token) ? await opts.getToken() : token;
            token = tok;
        }
        catch (e) {
            const err = e instanceof EarshotError ? e : new EarshotError("TOKEN", "could not get a token: " + String(e?.message ?? e), { fatal: false });
            // A grant endpoint that cannot be reached is a network problem: retry.
            fail(err.code === "TOKEN" ? new EarshotError("UNREACHABLE", err.message) : err, 1006, "token");
            return;
        }
        const useProto = (opts.auth ?? "subprotocol") === "subprotocol";
        let u = useProto ? url : url + "&token=" + encodeURIComponent(tok);
        if (sessions > 0 && streamId !== "") {
            // Where the resent audio starts in the stream (the open handler sends from the
            // same chunk unless more than maxBufferSeconds piled up meanwhile).
            trim();
            const from = chunks.length > 0 ? chunks[0].start : sent;
            u += "&resume=" + encodeURIComponent(streamId) + "&resume_offset_ms=" + String(Math.round(from * 1000));
        }
        let s;
        try {
            s = useProto ? new WS(u, ["token", tok]) : new WS(u);
        }
        catch (e) {
            fail(new EarshotError("BAD_REQUEST", String(e?.message ?? e)), 1006, "constructor");
            return;
        }
        s.binaryType = "arraybuffer";
        sock = s;
        let opened = false;
        let errEv;
        lastError = undefined;
        s.addEventListener("open", () => {
            if (sock !== s)
                return;
            opened = true;
            attempt = 0;
            sessions++;
            lastWords = 0;
            state = closing ? "closing" : "open";
            trim();
            // The new server session's time 0 is the start of the first resent chunk.
            offset = chunks.length > 0 ? chunks[0].start : sent;
            for (const c of chunks)
                sendNow(c);
            if (pendingFinalize || closing)
                s.send(JSON.stringify({ type: "Finalize" }));
            pendingFinalize = false;
            if (closing)
                s.send(JSON.stringify({ type: "CloseStream" }));
            emit("open", { requestId, attempt: sessions });
        });
        s.addEventListener("message", (ev) => {
            if (sock === s)
                onMessage(ev.data);
        });
        s.addEventListener("error", (ev) => {
            errEv = ev;
        });
        s.addEventListener("close", (ev) => {
            if (sock !== s)
                return;
            sock = null;
            const code = ev.code;
            const reason = ev.reason ?? "";
            if (!opened) {
                void diagnose(errEv, tok).then((err) => fail(err, code, reason));
                return;
            }
            if (code === 1000 && closing) {
                finish(code, reason);
                return;
            }
            if (code === 1000 && !closing) {
                // The server ended the stream normally (e.g. drained): nothing to resume unless audio is pending.
                if (pending() === 0 || !reconnect) {
                    finish(code, reason);
                    return;
                }
            }
            const err = lastError ?? (CLOSE_CODES[code]
                ? new EarshotError(CLOSE_CODES[code], reason || MESSAGES[CLOSE_CODES[code]] || CLOSE_CODES[code], { closeCode: code })
                : new EarshotError("CONNECTION_LOST", `connection lost (close ${code}${reason ? ": " + reason : ""})`, { closeCode: code }));
            if (closing) {
                finish(code, reason, err);
                return;
            }
            fail(err, code, reason);
        });
    }
    if (keepAliveMs > 0) {
        keepAlive = setInterval(() => {
            if (sock && sock.readyState === 1 && now() - lastSend >= keepAliveMs) {
                sock.send(JSON.stringify({ type: "KeepAlive" }));
                lastSend = now();
            }
        }, Math.max(250, keepAliveMs / 2));
        keepAlive.unref?.();
    }
    const conn = {
        sendAudio(audio) {
            if (state === "closed" || closing)
                return;
            let data;
            if (audio instanceof ArrayBuffer)
                data = audio.slice(0);
            else
                data = audio.buffer.slice(audio.byteOffset, audio.byteOffset + audio.byteLength);
            if (data.byteLength === 0)
                return;
            const c = { data, start: sent, end: sent + data.byteLength / bytesPerSecond, sentAt: -1 };
            sent = c.end;
            chunks.push(c);
            sendNow(c);
            trim();
        },
        finalize() {
            if (sock && sock.readyState === 1)
                sock.send(JSON.stringify({ type: "Finalize" }));
            else
                pendingFinalize = true;
        },
        close(timeoutMs = 15000) {
            if (state === "closed")
                return Promise.resolve();
            const done = new Promise((resolve) => closeWaiters.push(resolve));
            if (!closing) {
                closing = true;
                if (sock && sock.readyState === 1) {
                    state = "closing";
                    sock.send(JSON.stringify({ type: "CloseStream" }));
                }
                else if (state === "reconnecting" && pending() === 0) {
                    finish(1000, "closed while reconnecting");
                }
                const t = setTimeout(() => {
                    sock?.close(1000);
                    finish(1000, "close timed out", lastError);
                }, timeoutMs);
                void done.then(() => clearTimeout(t));
            }
            return done;
        },
        abort() {
            closing = true;
            const s = sock;
            sock = null;
            s?.close(1000);
            finish(1000, "aborted");
        },
        on(type, fn) {
            let set = listeners.get(type);
            if (!set)
                listeners.set(type, (set = new Set()));
            set.add(fn);
            return () => conn.off(type, fn);
        },
        off(type, fn) {
            listeners.get(type)?.delete(fn);
        },
        get state() {
            return state;
        },
        get sentSeconds() {
            return sent;
        },
        get finalEnd() {
            return finalEnd;
        },
        get requestId() {
            return requestId;
        },
        _dropForTest() {
            cutSocket(sock);
        },
    };
    void open();
    return conn;
}
const TURN_EVENTS = {
    StartOfTurn: "startofturn", Update: "update", EagerEndOfTurn: "eagerendofturn",
    TurnResumed: "turnresumed", EndOfTurn: "endofturn",
};
/** turnsURL builds the /v2/listen URL (without credentials) from the options. */
export function turnsURL(o) {
    let base = o.url.replace(/^http/i, "ws");
    const path = base.split("?")[0];
    if (/\/v1\/listen\/?$/.test(path))
        base = base.replace(/\/v1\/listen\/?(?=\?|$)/, "/v2/listen");
    else if (!/\/v2\/listen\/?$/.test(path))
        base = base.replace(/\/+$/, "") + "/v2/listen";
    const u = new URL(base);
    const q = u.searchParams;
    if (o.model)
        q.set("model", o.model);
    q.set("encoding", o.encoding ?? "linear16");
    q.set("sample_rate", String(o.sampleRate ?? 16000));
    if (o.eotThreshold !== undefined)
        q.set("eot_threshold", String(o.eotThreshold));
    if (o.eagerEotThreshold !== undefined)
        q.set("eager_eot_threshold", String(o.eagerEotThreshold));
    if (o.eotTimeoutMs !== undefined)
        q.set("eot_timeout_ms", String(Math.round(o.eotTimeoutMs)));
    for (const t of o.keyterms ?? [])
        q.append("keyterm", t);
    if (o.languageHint)
        q.set("language_hint", o.languageHint);
    return u.toString();
}
const num = (v, dflt = 0) => {
    const n = Number(v);
    return Number.isFinite(n) ? n : dflt;
};
/**
 * connectTurns opens a turn-taking stream (GET /v2/listen). It returns at once;
 * audio and control messages given before the socket opens are sent, in order,
 * when it does. Events: open, connected, turn (every TurnInfo) and startofturn,
 * update, eagerendofturn, turnresumed, endofturn, configuresuccess,
 * configurefailure, message, error, close.
 *
 * Reconnection (options.reconnect, default true) follows connect()'s: after a dropped
 * connection or a close 1011/1012/1013 it gets a fresh token from getToken, reopens with
 * resume (so the resent audio is billed once) and resume_turn_index, and resends the
 * audio after the last EndOfTurn; the open turn starts again there. Other closes (a
 * Flux Error such as BAD_AUDIO, IDLE_TIMEOUT) end the stream: error, then close. Works
 * with microphone({ connection }) exactly as connect() does.
 */
export function connectTurns(opts) {
    const maybeWS = opts.WebSocket ?? globalThis.WebSocket;
    if (!maybeWS)
        throw new EarshotError("BAD_REQUEST", "no WebSocket constructor: pass options.WebSocket (e.g. the ws package) in Node < 22");
    const WS = maybeWS;
    if (!opts.token && !opts.getToken)
        throw new EarshotError("TOKEN", "connectTurns needs token or getToken");
    const url = turnsURL(opts);
    const bytesPerSecond = bytesPerSample(opts.encoding ?? "linear16") * (opts.sampleRate ?? 16000);
    const keepAliveMs = opts.keepAliveMs ?? 4000;
    const history = Math.max(1, opts.latencyHistorySeconds ?? 120);
    const reconnect = opts.reconnect ?? true;
    const maxReconnects = opts.maxReconnects ?? 6;
    const maxBuffer = opts.maxBufferSeconds ?? 120;
    const sampleBytes = bytesPerSample(opts.encoding ?? "linear16");
    const listeners = new Map();
    const emit = (type, ev) => {
        for (const fn of [...(listeners.get(type) ?? [])]) {
            try {
                fn(ev);
            }
            catch (e) {
                setTimeout(() => { throw e; });
            }
        }
    };
    let state = "connecting";
    let sock = null;
    let sent = 0; // stream seconds given to sendAudio
    // Send times of the audio: [start, sentAt] per frame, oldest first, for latencyMs.
    let starts = [];
    let times = [];
    let outbox = []; // what was given before the socket opened
    let requestId = "";
    let turnIndex = 0;
    let lastSend = now();
    let keepAlive;
    let closeWaiters = [];
    let closing = false;
    let lastError;
    // Reconnection, as connect() does it, with EndOfTurn as the final.
    let attempt = 0; // consecutive failed attempts
    let sessions = 0; // sockets opened so far
    let streamId = ""; // request_id of the first connection: what a reconnect resumes
    let offset = 0; // stream time at which the current connection's time 0 lies
    let ended = 0; // turns ended (the next turn's turn_index)
    let openTurn = -1; // turn_index of the turn whose StartOfTurn was delivered
    let chunks = []; // audio after the last EndOfTurn
    let testDrop = false; // _dropForTest cut the socket
    // Drops the audio up to stream time t (an EndOfTurn's end; cut on a sample) and
    // beyond maxBuffer seconds.
    const settle = (t) => {
        let i = 0;
        while (i < chunks.length && (chunks[i].end <= t + 1e-9 || sent - chunks[i].start > maxBuffer))
            i++;
        if (i > 0)
            chunks = chunks.slice(i);
        const c = chunks[0];
        if (c && c.start < t) {
            const k = Math.round(((t - c.start) * bytesPerSecond) / sampleBytes) * sampleBytes;
            chunks[0] = { data: c.data.slice(k), start: c.start + k / bytesPerSecond, end: c.end };
        }
    };
    const buffered = () => chunks.reduce((s, c) => s + c.end - c.start, 0);
    const sentAt = (t) => {
        if (t < 0 || t > sent + 1e-6 || starts.length === 0)
            return undefined;
        // The last frame starting at or before t (binary search).
        let lo = 0, hi = starts.length - 1;
        if (starts[0] > t + 1e-6)
            return undefined;
        while (lo < hi) {
            const mid = (lo + hi + 1) >> 1;
            if (starts[mid] <= t + 1e-6)
                lo = mid;
            else
                hi = mid - 1;
        }
        return times[lo] >= 0 ? times[lo] : undefined;
    };
    const finish = (code, reason, err) => {
        if (state === "closed")
            return;
        state = "closed";
        if (keepAlive)
            clearInterval(keepAlive);
        outbox = [];
        chunks = [];
        if (err)
            emit("error", err);
        emit("close", { code, reason, error: err });
        for (const w of closeWaiters)
            w();
        closeWaiters = [];
    };
    const send = (frame) => {
        if (sock && sock.readyState === 1) {
            sock.send(frame);
            lastSend = now();
        }
        else {
            outbox.push(frame);
        }
    };
    const turnInfo = (m, receivedAt) => {
        // Times of a resumed connection start at its first resent sample: put them on the stream's clock.
        const at = (v) => Math.round((num(v) + offset) * 1e6) / 1e6;
        const words = (Array.isArray(m.words) ? m.words : []).map((w) => ({
            word: String(w?.word ?? ""), confidence: num(w?.confidence), start: at(w?.start), end: at(w?.end),
        }));
        const event = String(m.event ?? "");
        const start = at(m.audio_window_start);
        const end = at(m.audio_window_end);
        const from = event === "StartOfTurn" ? start : words.length > 0 ? words[words.length - 1].end : end;
        // An end time is the end of the frame it closes, not the start of the next one.
        const t = sentAt(event === "StartOfTurn" ? from : Math.max(0, from - 1e-4));
        const ev = {
            event, turnIndex: num(m.turn_index), audioWindowStart: start, audioWindowEnd: end,
            transcript: String(m.transcript ?? ""), words, endOfTurnConfidence: num(m.end_of_turn_confidence),
            sequenceId: num(m.sequence_id, -1), requestId: String(m.request_id ?? requestId), receivedAt,
            latencyMs: t === undefined ? undefined : Math.max(0, receivedAt - t), latencyFrom: from, raw: m,
        };
        if (typeof m.trigger === "string")
            ev.trigger = m.trigger;
        if (Array.isArray(m.languages))
            ev.languages = m.languages.map(String);
        if (Array.isArray(m.languages_hinted))
            ev.languagesHinted = m.languages_hinted.map(String);
        return ev;
    };
    const onMessage = (data) => {
        const receivedAt = now();
        if (typeof data !== "string")
            return;
        let m;
        try {
            m = JSON.parse(data);
        }
        catch {
            return;
        }
        if (!m || typeof m !== "object")
            return;
        emit("message", m);
        const seq = num(m.sequence_id, -1);
        switch (m.type) {
            case "Connected":
                if (typeof m.request_id === "string")
                    requestId = m.request_id;
                if (sessions > 1)
                    break; // a reconnect continues the stream: one connected event
                if (streamId === "")
                    streamId = requestId;
                emit("connected", { requestId, sequenceId: seq });
                break;
            case "TurnInfo": {
                const ev = turnInfo(m, receivedAt);
                // A resumed connection starts the open turn again: its StartOfTurn is not news.
                if (ev.event === "StartOfTurn" && (ev.turnIndex === openTurn || ev.turnIndex < ended))
                    break;
                if (ev.event === "EndOfTurn" && ev.turnIndex < ended)
                    break;
                if (ev.event === "StartOfTurn")
                    openTurn = ev.turnIndex;
                if (ev.event === "EndOfTurn") {
                    ended = ev.turnIndex + 1;
                    openTurn = -1;
                    if (reconnect)
                        settle(ev.audioWindowEnd);
                }
                if (ev.event === "EndOfTurn")
                    turnIndex = ev.turnIndex + 1;
                else
                    turnIndex = ev.turnIndex;
                emit("turn", ev);
                const name = TURN_EVENTS[ev.event];
                if (name)
                    emit(name, ev);
                break;
            }
            case "ConfigureSuccess": {
                const th = (m.thresholds ?? {});
                const thresholds = { eotThreshold: num(th.eot_threshold), eotTimeoutMs: num(th.eot_timeout_ms) };
                if (th.eager_eot_threshold !== undefined && th.eager_eot_threshold !== null)
                    thresholds.eagerEotThreshold = num(th.eager_eot_threshold);
                emit("configuresuccess", { thresholds, keyterms: Array.isArray(m.keyterms) ? m.keyterms.map(String) : [], sequenceId: seq, raw: m });
                break;
            }
            case "ConfigureFailure":
                emit("configurefailure", { description: String(m.description ?? "Configure was refused"), sequenceId: seq, raw: m });
                break;
            case "Error": {
                // Flux's Error is fatal: the server closes right after it, and the close reports it.
                const code = String(m.code ?? "INTERNAL");
                lastError = new EarshotError(code, String(m.description ?? code));
                break;
            }
        }
    };
    // fail ends the stream with err, or reopens it when a reconnect can help: a dropped
    // connection or a close 1011/1012/1013 (connect()'s rule), never after closeStream.
    const fail = (err, code, reason) => {
        const canRetry = reconnect && !closing && state !== "closed" && attempt < maxReconnects && !FATAL.has(err.code) &&
            (code === 1006 || code === 1011 || code === 1012 || code === 1013 || err.code === "UNREACHABLE");
        if (!canRetry) {
            finish(code, reason, err);
            return;
        }
        attempt++;
        state = "reconnecting";
        const delayMs = backoffMs(attempt);
        emit("reconnecting", { attempt, delayMs, bufferedSeconds: buffered(), error: err });
        setTimeout(() => void open(), delayMs);
    };
    async function open() {
        if (state === "closed")
            return;
        let tok;
        try {
            tok = opts.getToken && (sessions > 0 || attempt > 0 || !opts.token)
                ? await opts.getToken()
                : opts.token;
        }
        catch (e) {
            const err = e instanceof EarshotError ? e : new EarshotError("UNREACHABLE", "could not get a token: " + String(e?.message ?? e));
            if (sessions > 0)
                fail(err, 1006, "token");
            else
                finish(1006, "token", err);
            return;
        }
        if (state === "closed")
            return;
        const useProto = (opts.auth ?? "subprotocol") === "subprotocol";
        let u = url;
        const resumed = sessions > 0;
        if (resumed && streamId !== "") {
            // The stream this connection continues, where its resent audio starts, and the
            // turn_index of its first turn, so that the resent audio is billed once and the
            // turns count on.
            settle(0);
            const from = chunks.length > 0 ? chunks[0].start : sent;
            u += "&resume=" + encodeURIComponent(streamId) + "&resume_offset_ms=" + String(Math.round(from * 1000));
            if (ended > 0)
                u += "&resume_turn_index=" + String(ended);
        }
        let s;
        try {
            s = useProto ? new WS(u, ["token", tok]) : new WS(u + "&token=" + encodeURIComponent(tok));
        }
        catch (e) {
            finish(1006, "constructor", new EarshotError("BAD_REQUEST", String(e?.message ?? e)));
            return;
        }
        s.binaryType = "arraybuffer";
        sock = s;
        let opened = false;
        let errEv;
        s.addEventListener("open", () => {
            if (sock !== s)
                return;
            opened = true;
            attempt = 0;
            sessions++;
            state = closing ? "closing" : "open";
            const frames = outbox;
            outbox = [];
            if (resumed) {
                // The audio after the last EndOfTurn (the queued audio is part of it), then
                // the queued control messages. The new connection's time 0 is its first sample.
                settle(0);
                offset = chunks.length > 0 ? chunks[0].start : sent;
                for (const c of chunks)
                    s.send(c.data);
                for (const f of frames)
                    if (typeof f === "string")
                        s.send(f);
            }
            else {
                for (const f of frames)
                    s.send(f);
            }
            lastSend = now();
            // Audio queued before the open counts as sent now.
            for (let i = times.length - 1; i >= 0 && times[i] < 0; i--)
                times[i] = lastSend;
            emit("open", { requestId, attempt: sessions });
        });
        s.addEventListener("message", (ev) => {
            if (sock === s)
                onMessage(ev.data);
        });
        s.addEventListener("error", (ev) => {
            errEv = ev;
        });
        s.addEventListener("close", (ev) => {
            if (sock !== s)
                return;
            sock = null;
            const code = testDrop ? 1006 : ev.code;
            testDrop = false;
            const reason = ev.reason ?? "";
            if (!opened) {
                // A refused first connection ends the stream; a refused reconnect is retried
                // while a retry can help (the gateway may still be restarting).
                void probeRefusal(errEv, url, tok, opts.fetch).then((err) => (resumed ? fail(err, 1006, reason) : finish(code, reason, err)));
                return;
            }
            if (code === 1000 && !lastError) {
                finish(code, reason);
                return;
            }
            const err = lastError ?? (CLOSE_CODES[code]
                ? new EarshotError(CLOSE_CODES[code], reason || MESSAGES[CLOSE_CODES[code]] || CLOSE_CODES[code], { closeCode: code })
                : new EarshotError("CONNECTION_LOST", `connection lost (close ${code}${reason ? ": " + reason : ""})`, { closeCode: code }));
            lastError = undefined;
            fail(err, code, reason);
        });
    }
    if (keepAliveMs > 0) {
        keepAlive = setInterval(() => {
            if (sock && sock.readyState === 1 && now() - lastSend >= keepAliveMs)
                send(JSON.stringify({ type: "KeepAlive" }));
        }, Math.max(250, keepAliveMs / 2));
        keepAlive.unref?.();
    }
    const control = (m) => {
        if (state === "closed" || closing)
            return;
        send(JSON.stringify(m));
    };
    const conn = {
        sendAudio(audio) {
            if (state === "closed" || closing)
                return;
            let data;
            if (audio instanceof ArrayBuffer)
                data = audio.slice(0);
            else
                data = audio.buffer.slice(audio.byteOffset, audio.byteOffset + audio.byteLength);
            if (data.byteLength === 0)
                return;
            const open = sock !== null && sock.readyState === 1;
            starts.push(sent);
            times.push(open ? now() : -1);
            const start = sent;
            sent += data.byteLength / bytesPerSecond;
            if (reconnect)
                chunks.push({ data, start, end: sent });
            // While reconnecting the audio waits in chunks: the reopen resends them.
            if (state !== "reconnecting")
                send(data);
            // Forget send times older than the history (in blocks, not frame by frame).
            if (starts.length > 64 && sent - starts[64] > history) {
                let i = 0;
                while (i < starts.length - 1 && sent - starts[i + 1] > history)
                    i++;
                starts = starts.slice(i);
                times = times.slice(i);
            }
        },
        forceEndTurn() {
            control({ type: "ForceEndTurn" });
        },
        configure(c) {
            const thresholds = {};
            if (c.eotThreshold !== undefined)
                thresholds.eot_threshold = c.eotThreshold;
            if (c.eagerEotThreshold !== undefined)
                thresholds.eager_eot_threshold = c.eagerEotThreshold;
            if (c.eotTimeoutMs !== undefined)
                thresholds.eot_timeout_ms = c.eotTimeoutMs;
            control({ type: "Configure", thresholds });
        },
        closeStream(timeoutMs = 15000) {
            if (state === "closed")
                return Promise.resolve();
            const done = new Promise((resolve) => closeWaiters.push(resolve));
            if (!closing) {
                send(JSON.stringify({ type: "CloseStream" }));
                closing = true;
                if (state === "open")
                    state = "closing";
                // Nothing to resend while reconnecting (no open turn's audio): the stream is over.
                if (state === "reconnecting" && buffered() === 0)
                    finish(1000, "closed while reconnecting");
                const t = setTimeout(() => {
                    const s = sock;
                    sock = null;
                    s?.close(1000);
                    finish(1000, "close timed out", lastError);
                }, timeoutMs);
                void done.then(() => clearTimeout(t));
            }
            return done;
        },
        close(timeoutMs) {
            return conn.closeStream(timeoutMs);
        },
        abort() {
            closing = true;
            const s = sock;
            sock = null;
            s?.close(1000);
            finish(1000, "aborted");
        },
        on(type, fn) {
            let set = listeners.get(type);
            if (!set)
                listeners.set(type, (set = new Set()));
            set.add(fn);
            return () => conn.off(type, fn);
        },
        off(type, fn) {
            listeners.get(type)?.delete(fn);
        },
        get state() {
            return state;
        },
        get sentSeconds() {
            return sent;
        },
        get requestId() {
            return requestId;
        },
        get turnIndex() {
            return turnIndex;
        },
        sentAt,
        _dropForTest() {
            if (!sock)
                return;
            testDrop = true; // a browser socket cannot be cut: its close counts as a lost connection
            cutSocket(sock);
        },
    };
    void open();
    return conn;
}
/**
 * The getUserMedia audio constraints microphone() asks for unless
 * MicrophoneOptions.constraints says otherwise. Chosen by measurement
 * (`make bench-webrtc`, BENCHMARKS.md, Browser audio processing, Chromium, tiny.en): with noise
 * suppression and gain control on (the browsers' default) 7 word errors in 170
 * (2 from the WAV file itself) and 44 in 188 on twenty more clips, against 6 and
 * 33 with both off; noise suppression turned JFK's "ask not what your country"
 * into "ask not my country" in every run. Echo cancellation showed no consistent
 * cost (all three off: 3 and 41 errors) and keeps a voice agent from
 * transcribing its own voice from the speakers, so it stays on.
 */
export const DEFAULT_AUDIO_CONSTRAINTS = Object.freeze({
    channelCount: 1,
    echoCancellation: true,
    noiseSuppression: false,
    autoGainControl: false,
});
/**
 * microphone asks for the microphone and streams it, low-pass filtered and
 * resampled to 16 kHz mono PCM16 by the capture AudioWorklet, into
 * connection.sendAudio (or onAudio). Errors are EarshotErrors with code
 * MIC_DENIED, MIC_NOT_FOUND or MIC_UNAVAILABLE (no mediaDevices: the page is not
 * https or localhost). The browser's audio processing follows
 * DEFAULT_AUDIO_CONSTRAINTS (noise suppression and gain control off, echo
 * cancellation on) unless o.constraints overrides it.
 */
export async function microphone(o) {
    const AC = globalThis.AudioContext ??
        globalThis.webkitAudioContext;
    const md = globalThis.navigator?.mediaDevices;
    if (!md?.getUserMedia || !AC) {
        throw new EarshotError("MIC_UNAVAILABLE", "This page cannot use a microphone (it needs https or localhost, and a browser with Web Audio).");
    }
    const ownContext = !o.audioContext;
    const ctx = o.audioContext ?? new AC();
    let stream;
    try {
        stream = await md.getUserMedia({
            audio: { ...DEFAULT_AUDIO_CONSTRAINTS, ...o.constraints },
        });
    }
    catch (e) {
        if (ownContext)
            void ctx.close();
        const name = e?.name ?? "";
        if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
            throw new EarshotError("MIC_DENIED", "Microphone access was denied. Allow it in the browser's site settings and try again.");
        }
        if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
            throw new EarshotError("MIC_NOT_FOUND", "No microphone was found.");
        }
        throw new EarshotError("MIC_UNAVAILABLE", "The microphone could not be started: " + String(e?.message ?? e));
    }
    try {
        await ctx.audioWorklet.addModule(String(o.workletURL));
        const src = ctx.createMediaStreamSource(stream);
        const frameMs = Math.min(100, Math.max(20, o.frameMs ?? 40));
        const node = new AudioWorkletNode(ctx, "earshot-capture", {
            numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
            processorOptions: { targetRate: 16000, frameSamples: Math.round((16000 * frameMs) / 1000) },
        });
        node.port.onmessage = (ev) => {
            const d = ev.data;
            if (d.pcm) {
                const pcm = new Int16Array(d.pcm);
                o.connection?.sendAudio(pcm);
                o.onAudio?.(pcm);
            }
            if (d.rms !== undefined)
                o.onLevel?.(d.rms, d.peak ?? d.rms);
        };
        // A silent path to the destination keeps every browser pulling the graph.
        const mute = ctx.createGain();
        mute.gain.value = 0;
        src.connect(node);
        node.connect(mute);
        mute.connect(ctx.destination);
        if (ctx.state !== "running")
            await ctx.resume();
        let stopped = false;
        return {
            context: ctx,
            stream,
            async stop() {
                if (stopped)
                    return;
                stopped = true;
                node.port.postMessage({ type: "stop" });
                node.port.onmessage = null;
                src.disconnect();
                node.disconnect();
                mute.disconnect();
                for (const t of stream.getTracks())
                    t.stop();
                if (ownContext)
                    await ctx.close();
            },
        };
    }
    catch (e) {
        for (const t of stream.getTracks())
            t.stop();
        if (ownContext)
            void ctx.close();
        if (e instanceof EarshotError)
            throw e;
        throw new EarshotError("MIC_UNAVAILABLE", "Audio capture could not start: " + String(e?.message ?? e));
    }
}
