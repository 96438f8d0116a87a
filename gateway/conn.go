package gateway

import (
	"context"
	"hash"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/gorilla/websocket"
)

// connection is one client connection (a WebSocket of /v1/listen or /v2/listen)
// after admission; it opens one bus session (Stream). Goroutines:
//   - the handler goroutine reads frames (readLoop) and is the only one that
//     decodes audio and calls Stream.Send (under mu, shared with drain);
//   - writeLoop is the only writer of data frames; it writes the prepared JSON of
//     the bounded queue, and finally the close frame once end asked for it. It runs
//     only while there is something to write: an idle stream has no writer;
//   - relayLoop maps the Stream's results to wire messages and runs the timers
//     (maximum length, quota recheck, close deadline, drain).
//
// An idle stream costs its two goroutines' stacks and the state below; keep both
// small (internal/bench TestGatewayCapacity measures it).
type connection struct {
	srv    *Server
	info   SessionInfo
	params wire.Params
	model  Model
	pipe   *ingest.Pipeline
	log    *slog.Logger
	start  time.Time

	ctx    context.Context
	cancel context.CancelFunc
	conn   atomic.Pointer[websocket.Conn]
	stream Stream
	meter  Meter
	budget *Budget    // the connection's share of its tenant's quota; nil: not capped
	flux   *fluxState // a /v2/listen (turn-taking) connection; nil on /v1/listen

	wmu        sync.Mutex // guards the writer's fields below
	queue      [][]byte   // messages for the client, at most Config.WriteQueue
	enqueued   int64      // messages queued so far
	fluxSeq    int64      // the next Flux sequence_id (cn.flux set)
	written    int64      // messages written to the socket so far
	finalEnds  []finalEnd // queued finals not yet written (for the resume record)
	closing    *closeMsg  // set once, by end
	writing    bool       // a writeLoop is running
	sockDone   bool       // the socket is closed: nothing more is written
	endOnce    sync.Once
	closeCode  atomic.Int64
	readerDone chan struct{}
	writerExit chan struct{}  // closed with sockDone
	wg         sync.WaitGroup // relayLoop and writeLoop

	drainCh   chan struct{}
	drainOnce sync.Once
	endingCh  chan struct{} // closed when FlagEnd went to the stream

	mu         sync.Mutex // guards the fields below and calls into pipe and stream.Send
	ending     bool
	endCode    int       // close code once the finals are out: 1000 CloseStream, 1012 drain
	endReason  string    // the close frame's reason, when endCode needs one
	sha        hash.Hash // of the raw frames; nil until the first one
	acceptedMs int64
	firstAudio time.Time
	frames     int
	results    atomic.Int64
}

type closeMsg struct {
	code   int
	reason string
	msg    *wire.Error
	raw    []byte // msg as a turn-taking stream sends it (Flux's Error, sequenced)
	flush  bool   // write what is queued first
}

func newConnection(s *Server, info SessionInfo, p wire.Params, m Model, pipe *ingest.Pipeline, log *slog.Logger) *connection {
	ctx, cancel := context.WithCancel(context.Background())
	return &connection{
		srv: s, info: info, params: p, model: m, pipe: pipe, log: log, start: time.Now(),
		ctx: ctx, cancel: cancel,
		readerDone: make(chan struct{}), writerExit: make(chan struct{}), drainCh: make(chan struct{}), endingCh: make(chan struct{}),
	}
}

// drain asks the connection to finish like a CloseStream and close with 1012.
func (cn *connection) drain() { cn.drainOnce.Do(func() { close(cn.drainCh) }) }

// abort ends the connection at once: no more writes, the socket is closed.
func (cn *connection) abort() {
	cn.closeCode.CompareAndSwap(0, wire.CloseServiceRestart)
	cn.cancel()
	if c := cn.conn.Load(); c != nil {
		_ = c.Close()
	}
}

func (cn *connection) run(conn *websocket.Conn, stream Stream, meter Meter) {
	cn.conn.Store(conn)
	cn.stream, cn.meter = stream, meter
	cn.reportOpen()
	if cn.flux != nil {
		cn.fluxConnected()
	}
	if cn.ctx.Err() != nil { // aborted while opening
		_ = conn.Close()
	}

	cn.wg.Add(1)
	go func() { defer cn.wg.Done(); cn.relayLoop() }()

	// The reader runs on the handler goroutine, whose stack already holds net/http's
	// frames: what it calls while a stream idles must stay shallow (see control).
	cn.readLoop()
	close(cn.readerDone)
	// A no-op unless the client closed or vanished first; then the writer sends the
	// close frame (or finds the socket dead) and exits.
	cn.end(closeMsg{code: websocket.CloseNormalClosure})
	<-cn.writerExit
	cn.cancel()
	stream.Close()
	cn.wg.Wait()

	if err := closeMeter(meter, cn.srv.cfg.CloseTimeout); err != nil {
		cn.log.Error("close meter", "err", err)
	}
	cn.reportClosed()
}

// reportOpen counts and logs the stream's start.
func (cn *connection) reportOpen() {
	cn.srv.m.live.WithLabelValues(string(cn.info.Tenant), cn.info.Model).Inc()
	cn.log.Info("stream open", "model", cn.info.Model, "encoding", cn.params.Encoding,
		"sample_rate", cn.params.SampleRate, "channels", cn.params.Channels, "multichannel", cn.params.Multichannel,
		"interim_results", cn.params.InterimResults, "ignored_params", cn.params.Ignored, "turns", cn.flux != nil)
}

// reportClosed counts and logs the stream's end.
func (cn *connection) reportClosed() {
	s := cn.srv
	s.m.live.WithLabelValues(string(cn.info.Tenant), cn.info.Model).Dec()
	code := int(cn.closeCode.Load())
	s.m.sessions.WithLabelValues(strconv.Itoa(code)).Inc()
	cn.mu.Lock()
	audioMs, frames := cn.acceptedMs, cn.frames
	cn.mu.Unlock()
	cn.log.Info("stream closed", "close_code", code, "audio_ms", audioMs, "frames", frames,
		"results", cn.results.Load(), "duration", time.Since(cn.start).Round(time.Millisecond))
}

// finalEnd is the end (ms of this connection's audio) of the final queued as message
// number seq: once it is written to a client that is still connected, the stream's
// resume record learns that the client has it (FinalMarker).
type finalEnd struct{ seq, endMs int64 }
