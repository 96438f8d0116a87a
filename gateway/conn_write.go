package gateway

// The connection's writer: a bounded queue of prepared messages, one writer goroutine
// while there is something to write, and the close.

import (
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/gorilla/websocket"
)

// end asks the writer to close the socket; the first call wins.
func (cn *connection) end(c closeMsg) {
	cn.endOnce.Do(func() {
		cn.closeCode.CompareAndSwap(0, int64(c.code))
		if c.msg != nil {
			c.msg.RequestID = string(cn.info.Session)
			cn.srv.m.errors.WithLabelValues(string(c.msg.Code)).Inc()
			cn.log.Info("stream error", "code", c.msg.Code, "description", c.msg.Description)
		}
		cn.wmu.Lock()
		if cn.flux != nil && c.msg != nil {
			e := cn.fluxError(c.msg.Code, c.msg.Description)
			e.setSequence(cn.fluxSeq)
			cn.fluxSeq++
			c.raw, _ = json.Marshal(e)
		}
		cn.closing = &c
		cn.startWriterLocked()
		cn.wmu.Unlock()
	})
}

// fail ends the connection with an Error message and close code. What is already queued
// (a final that came just before the worker was lost, say) goes out first, except to a
// client that does not read (slow consumer); every write has Config.WriteTimeout.
func (cn *connection) fail(code int, ec wire.ErrorCode, desc string) {
	cn.end(closeMsg{code: code, reason: string(ec), msg: wire.NewError(ec, desc), flush: ec != wire.CodeSlowConsumer})
}

// enqueue queues a message for the client; a full queue means the client does not
// read: the connection ends with 1008 "slow consumer". False: the message was not
// queued (the queue is full, or the socket is closed).
func (cn *connection) enqueue(v any) bool { return cn.enqueueFinal(v, -1) }

// enqueueFinal is enqueue for a final ending at endMs of this connection's audio (-1:
// not a final).
func (cn *connection) enqueueFinal(v any, endMs int64) bool {
	sq, isSeq := v.(sequenced)
	var b []byte
	var err error
	if !isSeq {
		if b, err = json.Marshal(v); err != nil {
			cn.log.Error("marshal", "err", err)
			return false
		}
	}
	cn.wmu.Lock()
	if cn.sockDone || (isSeq && cn.closing != nil && cn.closing.raw != nil) {
		// A turn-taking stream's Error is its last message (its sequence_id is taken).
		cn.wmu.Unlock()
		return false
	}
	if len(cn.queue) >= cn.srv.cfg.WriteQueue {
		cn.wmu.Unlock()
		cn.fail(wire.ClosePolicy, wire.CodeSlowConsumer, "slow consumer: results are not being read")
		return false
	}
	if isSeq {
		// Numbered and marshalled under the lock: sequence_id follows the queue's order.
		sq.setSequence(cn.fluxSeq)
		if b, err = json.Marshal(v); err != nil {
			cn.wmu.Unlock()
			cn.log.Error("marshal", "err", err)
			return false
		}
		cn.fluxSeq++
	}
	cn.queue = append(cn.queue, b)
	cn.enqueued++
	if endMs >= 0 {
		cn.finalEnds = append(cn.finalEnds, finalEnd{seq: cn.enqueued, endMs: endMs})
	}
	cn.startWriterLocked()
	cn.wmu.Unlock()
	return true
}

// startWriterLocked starts writeLoop unless one runs or the socket is closed; cn.wmu
// is held.
func (cn *connection) startWriterLocked() {
	if cn.writing || cn.sockDone {
		return
	}
	cn.writing = true
	cn.wg.Add(1)
	go cn.writeLoop()
}

// writeLoop writes the queue in order and returns when it is empty; once end asked
// for the close, it writes what is queued (if the close says flush), the Error
// message and the close frame, closes the socket and stops the connection.
func (cn *connection) writeLoop() {
	defer cn.wg.Done()
	conn := cn.conn.Load()
	wt := cn.srv.cfg.WriteTimeout
	write := func(b []byte, d time.Duration) error {
		_ = conn.SetWriteDeadline(time.Now().Add(d))
		return conn.WriteMessage(websocket.TextMessage, b)
	}
	for {
		cn.wmu.Lock()
		c, aborted := cn.closing, cn.ctx.Err() != nil
		var b []byte
		if !aborted && len(cn.queue) > 0 && (c == nil || c.flush) {
			b = cn.queue[0]
			cn.queue[0] = nil
			cn.queue = cn.queue[1:]
		} else if !aborted && c == nil {
			cn.queue = nil // an idle stream keeps no queue
			cn.writing = false
			cn.wmu.Unlock()
			return
		}
		cn.wmu.Unlock()

		switch {
		case aborted:
			_ = conn.Close()
		case b != nil:
			err := write(b, wt)
			if err == nil {
				cn.written1()
				continue
			}
			if c == nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					cn.srv.m.errors.WithLabelValues(string(wire.CodeSlowConsumer)).Inc()
					cn.closeCode.CompareAndSwap(0, wire.ClosePolicy)
					_ = conn.WriteControl(websocket.CloseMessage,
						websocket.FormatCloseMessage(wire.ClosePolicy, "slow consumer"), time.Now().Add(100*time.Millisecond))
				}
				cn.closeCode.CompareAndSwap(0, websocket.CloseAbnormalClosure)
			}
			_ = conn.Close()
		default: // the close, with nothing (more) to flush
			cn.settleMeter()
			var err error
			if c.raw != nil {
				err = write(c.raw, time.Second)
			} else if c.msg != nil {
				b, _ := json.Marshal(c.msg)
				err = write(b, time.Second)
			}
			if err == nil {
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.reason),
					time.Now().Add(time.Second))
				// Give the client a moment to answer the close; the reader sees it.
				t := time.NewTimer(2 * time.Second)
				select {
				case <-cn.readerDone:
				case <-t.C:
				case <-cn.ctx.Done():
				}
				t.Stop()
			}
			_ = conn.Close()
		}
		cn.socketClosed()
		return
	}
}

// socketClosed stops everything once the writer closed the socket, and unblocks a
// Send stuck on a stream whose results nobody reads any more.
func (cn *connection) socketClosed() {
	cn.wmu.Lock()
	cn.sockDone, cn.writing, cn.queue = true, false, nil
	cn.wmu.Unlock()
	close(cn.writerExit)
	cn.cancel()
	cn.stream.Close()
}

// written1 counts one message written to the socket and tells the meter about the
// finals among what was written while the client was still reading: a final queued
// for (or written after) a client that is gone is not one it has.
func (cn *connection) written1() {
	cn.wmu.Lock()
	cn.written++
	end := int64(-1)
	for len(cn.finalEnds) > 0 && cn.finalEnds[0].seq <= cn.written {
		end = max(end, cn.finalEnds[0].endMs)
		cn.finalEnds = cn.finalEnds[1:]
	}
	cn.wmu.Unlock()
	if end < 0 {
		return
	}
	select {
	case <-cn.readerDone:
		return
	default:
	}
	if fm, ok := cn.meter.(FinalMarker); ok {
		fm.FinalDelivered(end)
	}
}
