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
export interface MicrophoneOptions {
    /** URL of capture-worklet.js (served by Earshot at /capture-worklet.js). */
    workletURL: string | URL;
    /** Where the 16 kHz PCM16 frames go: a Connection or a function. */
    connection?: Pick<Connection, "sendAudio">;
    onAudio?: (pcm: Int16Array) => void;
    /** Input level of each frame: RMS and peak of the raw signal, 0..1. */
    onLevel?: (rms: number, peak: number) => void;
    /** Frame length in ms, 20..100. Default 40. */
    frameMs?: number;
    /** Extra getUserMedia audio constraints (deviceId, ...). */
    constraints?: MediaTrackConstraints;
    /** An AudioContext created in the user's click handler (Safari needs that); one is made otherwise. */
    audioContext?: AudioContext;
}
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
 * https or localhost).
 */
export declare function microphone(o: MicrophoneOptions): Promise<Microphone>;
export {};
