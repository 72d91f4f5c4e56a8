package hatsim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// qmpDo runs one QMP command on the monitor socket at path and returns
// its "return" value: connect, read the greeting, negotiate capabilities,
// execute, close. It is bounded by ctx and by qmpTimeout, so a wedged
// QEMU cannot hang a power command (digitalocean/go-qemu's monitor takes
// no context, which is why this small client exists).
func qmpDo(ctx context.Context, path, command string, args any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, qmpTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to QEMU's monitor: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(c)
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := readQMP(r, &greeting); err != nil || greeting.QMP == nil {
		return nil, fmt.Errorf("QEMU monitor greeting: %w", errors.Join(err, ctx.Err()))
	}
	if _, err := qmpExec(c, r, "qmp_capabilities", nil); err != nil {
		return nil, err
	}
	ret, err := qmpExec(c, r, command, args)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, ctx.Err())
	}
	return ret, err
}

// qmpTimeout bounds one monitor conversation.
const qmpTimeout = 10 * time.Second

type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
}

func qmpExec(c net.Conn, r *bufio.Reader, command string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("QEMU monitor %s: %w", command, err)
	}
	for range 1000 { // events may arrive before the answer
		var rep qmpReply
		if err := readQMP(r, &rep); err != nil {
			return nil, fmt.Errorf("QEMU monitor %s: %w", command, err)
		}
		switch {
		case rep.Error != nil:
			return nil, fmt.Errorf("QEMU monitor %s: %s: %s", command, rep.Error.Class, rep.Error.Desc)
		case rep.Return != nil:
			return rep.Return, nil
		}
	}
	return nil, fmt.Errorf("QEMU monitor %s: no answer among 1000 messages", command)
}

func readQMP(r *bufio.Reader, v any) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}
