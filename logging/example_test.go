package logging_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/tickgate/tickgate/logging"
)

// ExampleNew builds the logger cmd/tickgate passes to every package. (No
// Output: the line carries the time.)
func ExampleNew() {
	red := logging.NewRedactor()
	log, err := logging.New(os.Stderr, logging.Options{Format: "json", Level: "info", Redactor: red})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The secrets cache registers every key it loads or refreshes.
	red.Set("secrets", "vendor-key-0123456789")
	// Logs err="GET https://vendor.example/q?apikey=[redacted]: 401" cookie=[redacted]
	log.Info("upstream refused",
		"err", errors.New("GET https://vendor.example/q?apikey=vendor-key-0123456789: 401"),
		"cookie", "tickgate=abc")
}

func ExampleRedactor_Scrub() {
	red := logging.NewRedactor()
	red.Set("demo_password", "correct horse battery staple")
	fmt.Println(red.Scrub("Authorization: Bearer eyJhbGciOi.x.y"))
	fmt.Println(red.Scrub("login as demo with correct horse battery staple"))
	fmt.Println(red.Scrub("GET /v1/quote?symbol=AAPL&apikey=k-123"))
	// Output:
	// Authorization: [redacted]
	// login as demo with [redacted]
	// GET /v1/quote?symbol=AAPL&apikey=[redacted]
}
