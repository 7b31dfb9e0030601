package marketsim_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/tickgate/tickgate/marketsim"
)

func ExampleNew() {
	sim, err := marketsim.New(marketsim.Options{Keys: []string{"demo-key"}})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for _, key := range []string{"demo-key", "wrong"} {
		resp, err := client.Get(base + "/v1/quote/AAPL?apikey=" + key)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	// Output:
	// 200 OK
	// 401 Unauthorized
}

func ExampleServer_StreamURL() {
	sim, err := marketsim.New(marketsim.Options{Keys: []string{"demo-key"}})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, sim.StreamURL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	for _, msg := range []string{
		"", // read the connected status first
		`{"action":"auth","key":"demo-key"}`,
		`{"action":"subscribe","symbols":["AAPL"]}`,
	} {
		if msg != "" {
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				log.Fatal(err)
			}
		}
		_, frame, err := c.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(frame))
	}
	// Output:
	// [{"ev":"status","status":"connected"}]
	// [{"ev":"status","status":"auth_success","message":"authenticated"}]
	// [{"ev":"status","status":"subscribed","symbols":["AAPL"]}]
}
