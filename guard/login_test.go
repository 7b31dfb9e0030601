package guard

import (
	"context"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
)

// TestLoginRefund: a refunded attempt gives back what AllowLogin spent,
// for the address and the user, in every window, so successful logins
// never use up the limit; failed ones still do.
func TestLoginRefund(t *testing.T) {
	t.Parallel()
	ll, err := NewLoginLimiter(config.Limit{{Tokens: 2, Interval: time.Hour}, {Tokens: 3, Interval: 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	for i := range 10 {
		ctx, att := WithLoginAttempt(context.Background())
		if ok, _ := ll.AllowLogin(ctx, "192.0.2.1", "alice"); !ok {
			t.Fatalf("refunded attempt %d refused", i)
		}
		if err := ll.Refund(context.Background(), att); err != nil {
			t.Fatal(err)
		}
		if err := ll.Refund(context.Background(), att); err != nil { // twice: nothing more
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if ok, _ := ll.AllowLogin(context.Background(), "192.0.2.1", "alice"); !ok {
			t.Fatalf("failed attempt %d refused", i+1)
		}
	}
	ctx, att := WithLoginAttempt(context.Background())
	if ok, _ := ll.AllowLogin(ctx, "192.0.2.1", "alice"); ok {
		t.Fatal("third failed attempt allowed: the refunds gave back more than they spent")
	}
	if err := ll.Refund(context.Background(), att); err != nil {
		t.Fatal(err)
	}
	if ok, _ := ll.AllowLogin(context.Background(), "192.0.2.99", "alice"); ok {
		t.Fatal("refunding a refused attempt gave the user tokens back")
	}
	if err := ll.Refund(context.Background(), nil); err != nil {
		t.Fatalf("Refund(nil) = %v", err)
	}
}

// TestLoginRefundAfterWindow: a token spent in a window that has ended
// since is not refunded (the window refilled; a refund would lift the new
// one over its limit).
func TestLoginRefundAfterWindow(t *testing.T) {
	t.Parallel()
	ll, err := NewLoginLimiter(config.Limit{{Tokens: 1, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	ctx, att := WithLoginAttempt(context.Background())
	if ok, _ := ll.AllowLogin(ctx, "192.0.2.1", "alice"); !ok {
		t.Fatal("first attempt refused")
	}
	ll.l.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := ll.Refund(context.Background(), att); err != nil {
		t.Fatal(err)
	}
	ll.l.now = time.Now
	if ok, _ := ll.AllowLogin(context.Background(), "192.0.2.1", "bob"); ok {
		t.Fatal("a token of an ended window was refunded into the current one")
	}
}

// TestLoginAttemptResult: the attempt describes the limit closest to
// refusing: a refusal over an allowance, the fewest remaining otherwise;
// nothing while the store cannot answer.
func TestLoginAttemptResult(t *testing.T) {
	t.Parallel()
	ll, err := NewLoginLimiter(config.Limit{{Tokens: 3, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	bg := context.Background()
	ll.AllowLogin(bg, "192.0.2.1", "x") // the address has 2 left, alice 3

	ctx, att := WithLoginAttempt(bg)
	if _, ok := att.Result(); ok {
		t.Fatal("Result before AllowLogin reported a result")
	}
	ll.AllowLogin(ctx, "192.0.2.1", "alice")
	res, ok := att.Result()
	if !ok || !res.Allowed || res.Limit != 3 || res.Remaining != 1 {
		t.Fatalf("allowed attempt: %+v %v, want the address's bucket (1 left of 3)", res, ok)
	}

	ll.AllowLogin(bg, "192.0.2.2", "bob")
	ll.AllowLogin(bg, "192.0.2.3", "bob")
	ll.AllowLogin(bg, "192.0.2.4", "bob")
	ctx, att = WithLoginAttempt(bg)
	if ok, _ := ll.AllowLogin(ctx, "192.0.2.5", "bob"); ok {
		t.Fatal("fourth attempt for bob allowed")
	}
	res, ok = att.Result()
	if !ok || res.Allowed || res.Remaining != 0 || res.RetryAfter(time.Now()) < 1 {
		t.Fatalf("refused attempt: %+v %v, want the user's refusal", res, ok)
	}

	down, err := NewLoginLimiterWith(config.Limit{{Tokens: 3, Interval: time.Hour}}, LimiterOptions{Stores: brokenStores})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	ctx, att = WithLoginAttempt(bg)
	if ok, retry := down.AllowLogin(ctx, "192.0.2.1", "alice"); ok || retry != time.Second {
		t.Fatalf("fail-closed login limiter without its store: ok=%v retry=%v", ok, retry)
	}
	if res, ok := att.Result(); ok {
		t.Fatalf("Result without a store = %+v, want none", res)
	}
}
