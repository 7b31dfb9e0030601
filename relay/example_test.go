package relay_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/relay"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
)

// staticSecrets serves one key; the real thing is *secrets.Cache.
type staticSecrets struct{ key string }

func (s staticSecrets) Get(context.Context, string) (secrets.Value, error) {
	return secrets.NewValue(s.key), nil
}

func (s staticSecrets) Invalidate(context.Context, string, secrets.Value) (secrets.Value, error) {
	return secrets.NewValue(s.key), nil
}

// foreverSessions never end; the real thing is *session.Manager.
type foreverSessions struct{}

func (foreverSessions) Watch(string) (<-chan struct{}, func()) { return make(chan struct{}), func() {} }
func (foreverSessions) Touch(context.Context, string) error    { return nil }

func ExampleNew() {
	sim, err := marketsim.New(marketsim.Options{Keys: []string{"vendor-key-123"}})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}

	rl, err := relay.New(relay.Config{
		Feeds:          config.Demo(base).Feeds, // feed "demo", marketsim preset
		Secrets:        staticSecrets{"vendor-key-123"},
		Sessions:       foreverSessions{},
		AllowedOrigins: []string{"https://app.example.com"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rl.Close()

	// In tickgate the session middleware puts the session in the context.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := session.NewContext(r.Context(), &session.Session{Key: "opaque", User: "demo"})
		rl.ServeHTTP(w, r.WithContext(ctx))
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/demo", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"https://app.example.com"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	read := func() string {
		_, b, err := c.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		return string(b)
	}
	fmt.Println(read())
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"subscribe","symbols":["aapl"]}`)); err != nil {
		log.Fatal(err)
	}
	fmt.Println(read())
	data := read()
	fmt.Println(strings.HasPrefix(data, `{"type":"data","feed":"demo","messages":[{`))
	_ = c.Close(websocket.StatusNormalClosure, "")
	// Output:
	// {"type":"ready","feed":"demo","limits":{"max_symbols":50}}
	// {"type":"subscribed","symbols":["AAPL"]}
	// true
}
