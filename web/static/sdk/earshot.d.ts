/** A WebSocket constructor: the browser's, Node 22's global one, or `ws`'s. */
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocket;
export interface ConnectOptions {
    /** Server base (http(s)://host, ws(s)://host) or the full /v1/listen URL. */
    url: string;
    /** A token (from POST /v1/auth/grant or /demo/grant) or an API key. */
    token?: string;
    /** Called for a fresh token on every connect and reconnect (tokens are short-lived). */
    getToken?: () => string | Promise<string>;
    /** How the credential travels: the WebSocket subprotocol pair ["token", X] (default, the browser way) or ?token=. */
    auth?: "subprotocol" | "query";
    model?: string;
    language?: string;
    /** Audio encoding of sendAudio's bytes. Default linear16 (PCM16 little-endian). */
    encoding?: "linear16" | "linear32" | "float32" | "mulaw" | "alaw";
    /** Default 16000. */
    sampleRate?: number;
    /** Default 1. */
    channels?: number;
    /** Send partial (interim) results. Default true. */
    interimResults?: boolean;
    /** Silence in ms that ends an utterance, or false to turn endpointing off. Server default when unset. */
    endpointing?: number | false;
    utteranceEndMs?: number;
    /** Names and jargon to favour (keyterm=, once per term; at most 50, 64 bytes each). */
    keyterms?: string[];
    /** SpeechStarted events. Default true. */
    vadEvents?: boolean;
    /** Reconnect after an unexpected close, resending the audio after the last final. Default true. */
    reconnect?: boolean;
    /** Reconnect attempts in a row before giving up. Default 6. */
    maxReconnects?: number;
    /** Seconds of unfinalized audio kept for resending. Default 120. */
    maxBufferSeconds?: number;
    /**
     * Seconds of already-finalized speech resent before the unfinalized audio on a
     * reconnect, starting at a pause (the end of an earlier final, or the stream start).
     * The new server session transcribes it as context (its results are not delivered
     * again): without it the first word after the cut is often lost or misheard.
     * Default 3; 0 resends only the audio after the last final.
     */
    resumeContextSeconds?: number;
    /** Send KeepAlive when no audio was sent for this long (ms). Default 4000; 0 turns it off. */
    keepAliveMs?: number;
    /** WebSocket constructor; default globalThis.WebSocket. */
    WebSocket?: WebSocketCtor;
    /** fetch used to probe why a connection was refused (browsers hide the HTTP status). Default globalThis.fetch. */
    fetch?: typeof fetch;
}
export interface Word {
    word: string;
    start: number;
    end: number;
    confidence: number;
    punctuated_word?: string;
}
/** A partial or final transcript. Times are seconds of stream time (see above). */
export interface TranscriptEvent {
    transcript: string;
    words: Word[];
    start: number;
    end: number;
    confidence: number;
    isFinal: boolean;
    speechFinal: boolean;
    fromFinalize: boolean;
    /**
     * Milliseconds from when the audio at `end` was sent to when this result arrived:
     * an estimate of processing lag (it does not include audio still buffered in the
     * browser). Undefined when the audio is no longer tracked.
     */
    latencyMs?: number;
    /** True when this result has words the previous result of the same segment did not. */
    newWords: boolean;
    /**
     * The language the server found for this result (channel.detected_language, e.g.
     * "zh"), on streams that detect it (language=multi or detect_language); else undefined.
     */
    detectedLanguage?: string;
    requestId: string;
    raw: unknown;
}
export interface EventMap {
    open: {
        requestId: string;
        attempt: number;
    };
    partial: TranscriptEvent;
    final: TranscriptEvent;
    speechstart: {
        timestamp: number;
    };
    utteranceend: {
        lastWordEnd: number;
    };
    metadata: Record<string, unknown>;
    /** fatal: the connection is over (a close event follows). Non-fatal errors are warnings such as TOO_FAST. */
    error: EarshotError;
    /** bufferedSeconds: audio not yet covered by a final, resent on reopen (with resumeContextSeconds before it). */
    reconnecting: {
        attempt: number;
        delayMs: number;
        bufferedSeconds: number;
        error: EarshotError;
    };
    close: {
        code: number;
        reason: string;
        error?: EarshotError;
    };
}
export type EventType = keyof EventMap;
/** Error codes: the server's wire codes plus a few found on this side. */
export type ErrorCode = "INVALID_AUTH" | "RATE_LIMITED" | "TOO_MANY_STREAMS" | "UNKNOWN_MODEL" | "MODEL_NOT_IN_PLAN" | "INSUFFICIENT_BALANCE" | "QUOTA_EXHAUSTED" | "NO_CAPACITY" | "SHUTTING_DOWN" | "BAD_AUDIO" | "UNKNOWN_MESSAGE" | "MESSAGE_TOO_LARGE" | "IDLE_TIMEOUT" | "MAX_DURATION" | "SLOW_CONSUMER" | "TOO_FAST" | "INTERNAL" | "BAD_REQUEST" | "NOT_FOUND" | "UNREACHABLE" | "CONNECTION_REFUSED" | "CONNECTION_LOST" | "TOKEN" | "MIC_DENIED" | "MIC_NOT_FOUND" | "MIC_UNAVAILABLE" | string;
export declare class EarshotError extends Error {
    readonly code: ErrorCode;
    /** HTTP status of a refused connection, when known. */
    readonly status?: number;
    /** WebSocket close code, when the error closed the connection. */
    readonly closeCode?: number;
    /** The connection is over because of this error. */
    readonly fatal: boolean;
    constructor(code: ErrorCode, message: string, o?: {
        status?: number;
        closeCode?: number;
        fatal?: boolean;
    });
    /** Whether trying again later can help (capacity, stream limits, network). */
    get retryable(): boolean;
}
type Listener<T> = (ev: T) => void;
/** A live transcription connection; see connect. */
export interface Connection {
    /** Queue audio (bytes in the declared encoding). Audio sent while (re)connecting is kept and sent on open. */
    sendAudio(audio: Int16Array | Float32Array | ArrayBuffer | Uint8Array): void;
    /** Ask the server to finalize the audio so far (a final with from_finalize follows). */
    finalize(): void;
    /** End the stream: CloseStream, then wait for the last finals, Metadata and the close. */
    close(timeoutMs?: number): Promise<void>;
    /** Drop the connection now without CloseStream. */
    abort(): void;
    on<K extends EventType>(type: K, fn: Listener<EventMap[K]>): () => void;
    off<K extends EventType>(type: K, fn: Listener<EventMap[K]>): void;
    /** "connecting" | "open" | "reconnecting" | "closing" | "closed" */
    readonly state: string;
    /** Seconds of audio given to sendAudio so far. */
    readonly sentSeconds: number;
    /** Stream time up to which finals were delivered. */
    readonly finalEnd: number;
    /** Request id of the current server session. */
    readonly requestId: string;
    /** Test hook: kill the socket as a network fault would (the connection reconnects). */
    _dropForTest(): void;
}
/**
 * joinText appends text b to text a, the way a transcript continues: with one space
 * between them, except where either side of the join is in a script written without
 * spaces (Chinese, Japanese, Thai, …), so that "广州市" + "房地产" is "广州市房地产"
 * while "ask not" + "what" is "ask not what". An empty side adds nothing.
 */
export declare function joinText(a: string, b: string): string;
/** listenURL builds the /v1/listen URL (without credentials) from the options. */
export declare function listenURL(o: ConnectOptions): string;
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
export declare function connect(opts: ConnectOptions): Connection;
export interface TurnOptions {
    /** Server base (http(s)://host, ws(s)://host) or the full /v2/listen URL. */
    url: string;
    /** A token (from POST /v1/auth/grant or /demo/grant) or an API key. */
    token?: string;
    /** Called for a token when none is given (tokens are short-lived; one opens one stream). */
    getToken?: () => string | Promise<string>;
    /** How the credential travels: the WebSocket subprotocol pair ["token", X] (default, the browser way) or ?token=. */
    auth?: "subprotocol" | "query";
    /** An Earshot model (tiny.en, base, …) or flux-general-en / flux-general-multi. Default: the server's default model. */
    model?: string;
    /** Audio encoding of sendAudio's bytes. Default linear16 (PCM16 little-endian). Turns are mono. */
    encoding?: "linear16" | "linear32" | "float32" | "mulaw" | "alaw";
    /** Default 16000. */
    sampleRate?: number;
    /** End-of-turn confidence that ends a turn, 0.5–1.0 (server default 0.7). */
    eotThreshold?: number;
    /** 0.3–0.9, at most eotThreshold: turns on EagerEndOfTurn and TurnResumed. Default off. */
    eagerEotThreshold?: number;
    /** Silence after speech (ms, 500–10000) that ends a turn whatever the confidence (server default 5000). */
    eotTimeoutMs?: number;
    /** Names and jargon to favour (keyterm=, once per term). */
    keyterms?: string[];
    /** A multilingual model's language (language_hint); none: the language is detected. */
    languageHint?: string;
    /** Send KeepAlive when nothing was sent for this long (ms). Default 4000; 0 turns it off. */
    keepAliveMs?: number;
    /** Seconds of send times kept for latencyMs (see TurnInfoEvent). Default 120. */
    latencyHistorySeconds?: number;
    /**
     * Reconnect after a dropped connection or a close that invites it (1011, 1012, 1013),
     * resending the audio after the last EndOfTurn: the open turn starts again on the new
     * connection, and the events go on as one stream (turn_index counting on, times in
     * stream seconds, no turn started or ended twice, one connected event). Default true.
     */
    reconnect?: boolean;
    /** Reconnect attempts in a row before giving up. Default 6. */
    maxReconnects?: number;
    /** Seconds of audio after the last EndOfTurn kept for resending. Default 120. */
    maxBufferSeconds?: number;
    /** WebSocket constructor; default globalThis.WebSocket. */
    WebSocket?: WebSocketCtor;
    /** fetch used to probe why a connection was refused (browsers hide the HTTP status). Default globalThis.fetch. */
    fetch?: typeof fetch;
}
/** TurnInfo's event names, in Flux's order within a turn. */
export type TurnEventName = "StartOfTurn" | "Update" | "EagerEndOfTurn" | "TurnResumed" | "EndOfTurn";
/** A word of a turn: Flux's punctuated word, with Earshot's start/end (stream seconds). */
export interface TurnWord {
    word: string;
    confidence: number;
    start: number;
    end: number;
}
/** One TurnInfo message. Times are seconds of the stream (the first sample given to sendAudio is 0). */
export interface TurnInfoEvent {
    event: TurnEventName;
    turnIndex: number;
    audioWindowStart: number;
    audioWindowEnd: number;
    transcript: string;
    words: TurnWord[];
    endOfTurnConfidence: number;
    /** EndOfTurn only: "model" (eot_threshold), "timeout" (eot_timeout_ms), "manual" (forceEndTurn), "close" (closeStream or a drain). */
    trigger?: "model" | "timeout" | "manual" | "close" | string;
    /** Languages heard (a detecting multilingual stream). */
    languages?: string[];
    /** The language_hint given. */
    languagesHinted?: string[];
    sequenceId: number;
    requestId: string;
    /** performance.now() when the message arrived. */
    receivedAt: number;
    /**
     * Milliseconds from when the audio at latencyFrom (stream seconds) was sent to when
     * this event arrived, as this side sees it (audio still buffered in the browser's
     * capture graph is not counted). latencyFrom is audio_window_start for StartOfTurn
     * (how long barge-in takes) and the end of the last word for the others (Update,
     * EagerEndOfTurn, TurnResumed and EndOfTurn: how long after the speaker stopped the
     * answer can start); audio_window_end when there are no words. Undefined when that
     * audio is older than latencyHistorySeconds or was not sent by this connection.
     */
    latencyMs?: number;
    latencyFrom: number;
    raw: Record<string, unknown>;
}
/** The end-of-turn settings as ConfigureSuccess reports them (all current values). */
export interface TurnThresholds {
    eotThreshold: number;
    /** Absent: eager end of turn is off. */
    eagerEotThreshold?: number;
    eotTimeoutMs: number;
}
/** configure()'s argument: each value given is changed, the others keep theirs. */
export interface TurnConfig {
    eotThreshold?: number;
    eagerEotThreshold?: number;
    eotTimeoutMs?: number;
}
export interface TurnEventMap {
    /** A socket opened; attempt counts them (2 and up: a reconnect). */
    open: {
        requestId: string;
        attempt: number;
    };
    /** The server's Connected message (the stream's first; a reconnect's is not delivered). */
    connected: {
        requestId: string;
        sequenceId: number;
    };
    /** The connection dropped and is being reopened; bufferedSeconds: the audio after the last EndOfTurn, resent on reopen. */
    reconnecting: {
        attempt: number;
        delayMs: number;
        bufferedSeconds: number;
        error: EarshotError;
    };
    /** Every TurnInfo, before the event of its own name below. */
    turn: TurnInfoEvent;
    startofturn: TurnInfoEvent;
    update: TurnInfoEvent;
    eagerendofturn: TurnInfoEvent;
    turnresumed: TurnInfoEvent;
    endofturn: TurnInfoEvent;
    /** A Configure was applied: every current value. */
    configuresuccess: {
        thresholds: TurnThresholds;
        keyterms: string[];
        sequenceId: number;
        raw: Record<string, unknown>;
    };
    /** A Configure was refused; nothing of it was applied. */
    configurefailure: {
        description: string;
        sequenceId: number;
        raw: Record<string, unknown>;
    };
    /** Every server message, parsed, before its own event (for logging and fields this SDK does not know); as the server sent it (times of its own connection). */
    message: Record<string, unknown>;
    /** Fatal: the stream is over (Flux's Error, a refused upgrade, a lost connection); close follows. */
    error: EarshotError;
    close: {
        code: number;
        reason: string;
        error?: EarshotError;
    };
}
export type TurnEventType = keyof TurnEventMap;
/** A turn-taking stream; see connectTurns. */
export interface TurnConnection {
    /** Queue audio (bytes in the declared encoding). Audio sent before the socket opens is sent on open. */
    sendAudio(audio: Int16Array | Float32Array | ArrayBuffer | Uint8Array): void;
    /** End the current turn now: an EndOfTurn with trigger "manual" follows (nothing happens between turns). */
    forceEndTurn(): void;
    /** Change the end-of-turn settings mid-stream: configuresuccess or configurefailure answers. */
    configure(c: TurnConfig): void;
    /** Finish: CloseStream (an open turn ends with trigger "close"), then wait for the server's close. */
    closeStream(timeoutMs?: number): Promise<void>;
    /** closeStream, under the name Connection uses. */
    close(timeoutMs?: number): Promise<void>;
    /** Drop the connection now without CloseStream. */
    abort(): void;
    on<K extends TurnEventType>(type: K, fn: Listener<TurnEventMap[K]>): () => void;
    off<K extends TurnEventType>(type: K, fn: Listener<TurnEventMap[K]>): void;
    /** "connecting" | "open" | "reconnecting" | "closing" | "closed" */
    readonly state: string;
    /** Seconds of audio given to sendAudio so far. */
    readonly sentSeconds: number;
    /** Request id of the current connection (from its Connected). */
    readonly requestId: string;
    /** The turn in progress (or the next one), counted from 0 as turn_index is. */
    readonly turnIndex: number;
    /**
     * performance.now() (Date.now() where there is no performance) when the audio at
     * stream time t (seconds) was sent; undefined when it is not sent yet or older than
     * latencyHistorySeconds.
     */
    sentAt(t: number): number | undefined;
    /** Test hook: kill the socket as a network fault would (the connection reconnects). */
    _dropForTest(): void;
}
/** turnsURL builds the /v2/listen URL (without credentials) from the options. */
export declare function turnsURL(o: TurnOptions): string;
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
export declare function connectTurns(opts: TurnOptions): TurnConnection;
export interface MicrophoneOptions {
    /** URL of capture-worklet.js (served by Earshot at /capture-worklet.js). */
    workletURL: string | URL;
    /** Where the 16 kHz PCM16 frames go: a Connection (connect) or TurnConnection (connectTurns). */
    connection?: Pick<Connection, "sendAudio">;
    onAudio?: (pcm: Int16Array) => void;
    /** Input level of each frame: RMS and peak of the raw signal, 0..1. */
    onLevel?: (rms: number, peak: number) => void;
    /** Frame length in ms, 20..100. Default 40. */
    frameMs?: number;
    /**
     * getUserMedia audio constraints (deviceId, ...), applied over
     * DEFAULT_AUDIO_CONSTRAINTS: echoCancellation on, noiseSuppression and
     * autoGainControl off. Pass `{ noiseSuppression: true }` to get the browser's
     * noise suppression back, `{ echoCancellation: false }` when nothing plays
     * through the speakers (headset, dictation).
     */
    constraints?: MediaTrackConstraints;
    /** An AudioContext created in the user's click handler (Safari needs that); one is made otherwise. */
    audioContext?: AudioContext;
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
export declare const DEFAULT_AUDIO_CONSTRAINTS: Readonly<MediaTrackConstraints>;
export interface Microphone {
    readonly context: AudioContext;
    readonly stream: MediaStream;
    /** Stop capture, release the device and close the AudioContext (unless it was passed in). */
    stop(): Promise<void>;
}
/**
 * microphone asks for the microphone and streams it, low-pass filtered and
 * resampled to 16 kHz mono PCM16 by the capture AudioWorklet, into
 * connection.sendAudio (or onAudio). Errors are EarshotErrors with code
 * MIC_DENIED, MIC_NOT_FOUND or MIC_UNAVAILABLE (no mediaDevices: the page is not
 * https or localhost). The browser's audio processing follows
 * DEFAULT_AUDIO_CONSTRAINTS (noise suppression and gain control off, echo
 * cancellation on) unless o.constraints overrides it.
 */
export declare function microphone(o: MicrophoneOptions): Promise<Microphone>;
export {};
