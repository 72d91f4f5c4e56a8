package netlab

// Do runs fn on an OS thread inside the namespace and returns its error:
// sockets fn opens (listeners, dialed connections) belong to the namespace
// for good and keep working from any goroutine afterwards. A long-running fn
// (a server's serve loop) holds its thread until it returns; run Do on a
// goroutine of its own for that. The thread never serves another goroutine
// (see Thread).
func (n Namespace) Do(fn func() error) error {
	t, err := n.Thread()
	if err != nil {
		return err
	}
	defer t.Close()
	return t.Do(fn)
}
