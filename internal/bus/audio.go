package bus

import (
	"encoding/binary"
	"fmt"
)

// ChunkFlag marks control points carried in-band with the audio, so that they keep
// their order relative to it.
type ChunkFlag uint8

const (
	FlagFinalize ChunkFlag = 1 << iota // client asked to finalize what it has sent so far
	FlagEnd                            // client closed the stream: finish and send ResultClosed
	FlagReplay                         // audio replayed after a failover
	// FlagResendResults carries no audio: the gateway asks the worker to publish its
	// results Seq..StartSample (result seqs) again, after a gap in what reached it.
	FlagResendResults
)

const chunkVersion = 1

// chunkHeader is version(1) flags(1) channel(1) reserved(1) seq(8) start(8) sent(8) sidLen(1).
const chunkHeader = 29

// AudioChunk is one piece of 16 kHz mono PCM16 audio of one channel of a session.
type AudioChunk struct {
	Session     SessionID
	Seq         uint64 // per session, from 1, increasing by 1 per chunk across channels
	Channel     int
	StartSample uint64 // stream position of PCM[0] in 16 kHz samples of this channel
	SentNs      int64  // gateway send time, unix ns
	Flags       ChunkFlag
	PCM         []int16
}

// EndSample is the stream position just after the chunk's last sample.
func (c *AudioChunk) EndSample() uint64 { return c.StartSample + uint64(len(c.PCM)) }

// Marshal encodes the chunk in the bus's binary form (little-endian).
func (c *AudioChunk) Marshal() []byte {
	sid := c.Session
	if len(sid) > 255 {
		sid = sid[:255]
	}
	b := make([]byte, chunkHeader+len(sid)+2*len(c.PCM))
	b[0] = chunkVersion
	b[1] = byte(c.Flags)
	b[2] = byte(c.Channel)
	binary.LittleEndian.PutUint64(b[4:], c.Seq)
	binary.LittleEndian.PutUint64(b[12:], c.StartSample)
	binary.LittleEndian.PutUint64(b[20:], uint64(c.SentNs))
	b[28] = byte(len(sid))
	copy(b[chunkHeader:], sid)
	p := b[chunkHeader+len(sid):]
	for i, s := range c.PCM {
		binary.LittleEndian.PutUint16(p[2*i:], uint16(s))
	}
	return b
}

// UnmarshalAudioChunk decodes a chunk; it never panics on malformed input.
func UnmarshalAudioChunk(b []byte) (*AudioChunk, error) {
	if len(b) < chunkHeader {
		return nil, fmt.Errorf("%w: %d bytes", ErrShortChunk, len(b))
	}
	if b[0] != chunkVersion {
		return nil, fmt.Errorf("%w: version %d", ErrChunkFormat, b[0])
	}
	n := int(b[28])
	if len(b) < chunkHeader+n {
		return nil, fmt.Errorf("%w: session id of %d bytes", ErrShortChunk, n)
	}
	p := b[chunkHeader+n:]
	if len(p)%2 != 0 {
		return nil, fmt.Errorf("%w: %d PCM bytes", ErrChunkFormat, len(p))
	}
	c := &AudioChunk{
		Flags:       ChunkFlag(b[1]),
		Channel:     int(b[2]),
		Seq:         binary.LittleEndian.Uint64(b[4:]),
		StartSample: binary.LittleEndian.Uint64(b[12:]),
		SentNs:      int64(binary.LittleEndian.Uint64(b[20:])),
		Session:     SessionID(b[chunkHeader : chunkHeader+n]),
		PCM:         make([]int16, len(p)/2),
	}
	for i := range c.PCM {
		c.PCM[i] = int16(binary.LittleEndian.Uint16(p[2*i:]))
	}
	return c, nil
}
