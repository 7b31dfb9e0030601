package main

import (
	"context"
	"fmt"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/proxy"
	"github.com/tickgate/tickgate/proxy/redisbudget"
)

// openBudgetStore returns the maker of the upstreams' vendor budgets
// (proxy.Config.Budgets): nil (in this process) unless
// TICKGATE_LIMIT_STORE=redis and an upstream sets a budget; then the
// Redis backend on TICKGATE_REDIS_URL under TICKGATE_REDIS_PREFIX +
// "budget:", so that replicas sharing a vendor key spend one budget (N
// replicas with budgets of their own would send N times the plan). A
// Redis that does not answer at start-up is an error. close releases the
// backend; call it after the App is closed.
func openBudgetStore(ctx context.Context, s config.Settings, f config.File) (budgets func(config.Budget) (proxy.Budget, error), close func(), err error) {
	if s.LimitStore != "redis" || !hasBudget(f) {
		return nil, func() {}, nil
	}
	pctx, cancel := context.WithTimeout(ctx, limitPingTimeout)
	defer cancel()
	b, err := redisbudget.Open(pctx, redisbudget.Config{URL: s.RedisURL, Prefix: s.RedisPrefix + "budget:"})
	if err != nil {
		return nil, nil, fmt.Errorf("TICKGATE_REDIS_URL: %w", err)
	}
	return b.Budget, func() { _ = b.Close() }, nil
}

// hasBudget reports whether an upstream of f sets a vendor budget.
func hasBudget(f config.File) bool {
	for _, u := range f.Upstreams {
		if !u.Budget.IsZero() {
			return true
		}
	}
	return false
}
