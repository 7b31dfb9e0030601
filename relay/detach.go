package relay

import "bytes"

// detachAbove is the frame size from which routed messages are copied
// out of their frame. Messages queued for a browser are otherwise slices
// of the vendor frame, so one small message waiting for a slow browser
// would keep a whole frame (up to UpstreamReadLimit) alive: QueueSize of
// them, hundreds of MiB. Typical vendor frames are far smaller and cost
// no copy.
const detachAbove = 64 << 10

// detach copies msgs' bytes out of frame when frame is large, so the
// frame can be freed once parsed.
func detach(msgs []vendorMsg, frame []byte) {
	if len(frame) < detachAbove {
		return
	}
	for i := range msgs {
		msgs[i].raw = bytes.Clone(msgs[i].raw) // sym is not queued: no copy
	}
}
