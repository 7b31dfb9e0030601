// Package memstore is the in-memory session.Store: one process, lost on
// restart (TICKGATE_SESSION_STORE=memory, the default). Several replicas
// need session/redisstore instead.
//
// Records live in a map behind a read-write mutex; each has a deadline
// (now + ttl). Get treats a record past its deadline as absent at once, and
// a sweeper goroutine reclaims such records every SweepInterval. Close
// stops the sweeper and waits for it. A per-user index of keys serves
// DeleteUser (session.UserIndex), behind Manager.RevokeUser.
//
//	st, err := memstore.New(memstore.Config{})
//	if err != nil { ... }
//	defer st.Close()
package memstore
