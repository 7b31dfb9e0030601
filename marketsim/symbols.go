package marketsim

import (
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
)

// instrument is a symbol of the default universe with a plausible price.
type instrument struct {
	symbol   string
	kind     string // stock, etf, crypto or fx
	price    float64
	decimals int
}

// defaultUniverse is a function, not a package variable, so nothing can
// mutate it.
func defaultUniverse() []instrument {
	stock := func(s string, p float64) instrument { return instrument{s, "stock", p, 2} }
	etf := func(s string, p float64) instrument { return instrument{s, "etf", p, 2} }
	return []instrument{
		stock("AAPL", 190), stock("MSFT", 410), stock("TSLA", 240), stock("AMZN", 180),
		stock("GOOGL", 170), stock("GOOG", 172), stock("META", 500), stock("NVDA", 120),
		stock("NFLX", 650), stock("AMD", 160), stock("INTC", 30), stock("ORCL", 140),
		stock("CRM", 270), stock("ADBE", 520), stock("CSCO", 50), stock("IBM", 190),
		stock("QCOM", 170), stock("AVGO", 160), stock("TXN", 200), stock("MU", 100),
		stock("JPM", 200), stock("BAC", 40), stock("WFC", 60), stock("C", 65),
		stock("GS", 480), stock("MS", 100), stock("V", 280), stock("MA", 470),
		stock("PYPL", 70), stock("AXP", 240), stock("BRK.B", 420), stock("JNJ", 155),
		stock("PFE", 28), stock("MRK", 110), stock("ABBV", 180), stock("LLY", 800),
		stock("UNH", 520), stock("CVS", 60), stock("XOM", 115), stock("CVX", 155),
		stock("COP", 110), stock("KO", 62), stock("PEP", 170), stock("MCD", 270),
		stock("SBUX", 90), stock("NKE", 80), stock("DIS", 100), stock("WMT", 70),
		stock("COST", 880), stock("HD", 370), stock("LOW", 240), stock("TGT", 150),
		stock("BA", 170), stock("CAT", 350), stock("GE", 170), stock("HON", 210),
		stock("MMM", 105), stock("UPS", 130), stock("FDX", 280), stock("DE", 390),
		stock("T", 18), stock("VZ", 41), stock("TMUS", 190), stock("CMCSA", 38),
		stock("UBER", 75), stock("ABNB", 140), stock("SHOP", 75), stock("PLTR", 30),
		stock("SNOW", 130), stock("COIN", 230), stock("SPOT", 380), stock("F", 11),
		stock("GM", 48), stock("RIVN", 12), stock("BABA", 85), stock("TSM", 170),
		stock("ASML", 900), stock("SAP", 230), stock("TM", 190), stock("SHEL", 70),
		etf("SPY", 560), etf("QQQ", 480), etf("IWM", 210), etf("DIA", 410),
		etf("VTI", 270), etf("GLD", 230), etf("TLT", 95), etf("XLF", 45),
		{"BTCUSD", "crypto", 60000, 2}, {"ETHUSD", "crypto", 3000, 2},
		{"SOLUSD", "crypto", 150, 2}, {"DOGEUSD", "crypto", 0.12, 5},
		{"ADAUSD", "crypto", 0.4, 5}, {"XRPUSD", "crypto", 0.55, 5},
		{"EURUSD", "fx", 1.08, 5}, {"GBPUSD", "fx", 1.27, 5},
		{"USDJPY", "fx", 150, 3}, {"AUDUSD", "fx", 0.66, 5},
		{"USDCAD", "fx", 1.36, 5}, {"USDCHF", "fx", 0.88, 5},
	}
}

// DefaultSymbols returns the default universe of 100 tickers (stocks,
// ETFs, crypto pairs and FX pairs), in a stable order.
func DefaultSymbols() []string {
	u := defaultUniverse()
	out := make([]string, len(u))
	for i, in := range u {
		out[i] = in.symbol
	}
	return out
}

// walkParams are the per-kind constants of the random walk.
type walkParams struct {
	sigma  float64 // relative step deviation per event
	spread float64 // relative bid/ask spread
	lotMin int
	lotMax int
	lotMul int
}

func paramsFor(kind string) walkParams {
	switch kind {
	case "etf":
		return walkParams{sigma: 0.0002, spread: 0.0001, lotMin: 1, lotMax: 10, lotMul: 100}
	case "crypto":
		return walkParams{sigma: 0.0008, spread: 0.0003, lotMin: 1, lotMax: 10, lotMul: 1}
	case "fx":
		return walkParams{sigma: 0.00005, spread: 0.00005, lotMin: 1, lotMax: 10, lotMul: 10000}
	default:
		return walkParams{sigma: 0.0003, spread: 0.0002, lotMin: 1, lotMax: 10, lotMul: 100}
	}
}

// symbol is one instrument and its random walk. The walk is shared by all
// connections and REST requests; mu guards the mutable part.
type symbol struct {
	name    string
	kind    string
	idx     int
	base    float64
	scale   float64 // 10^decimals
	tick    float64 // 1/scale
	decs    int
	params  walkParams
	tPrefix []byte // {"ev":"T","sym":"AAPL","p":
	qPrefix []byte // {"ev":"Q","sym":"AAPL","bp":
	qtPre   []byte // {"symbol":"AAPL","bid":

	mu   sync.Mutex
	rng  *rand.Rand
	mid  float64
	last float64
}

// newUniverse builds the symbols of names; known names get the default
// universe's prices, others a seeded price between 10 and 500.
func newUniverse(names []string, seed int64) []*symbol {
	known := make(map[string]instrument)
	for _, in := range defaultUniverse() {
		known[in.symbol] = in
	}
	pick := rand.New(rand.NewPCG(uint64(seed), 0x6d61726b657473))
	out := make([]*symbol, len(names))
	for i, name := range names {
		in, ok := known[name]
		if !ok {
			in = instrument{name, "stock", math.Round((10+pick.Float64()*490)*100) / 100, 2}
		}
		scale := math.Pow10(in.decimals)
		out[i] = &symbol{
			name:    name,
			kind:    in.kind,
			idx:     i,
			base:    in.price,
			scale:   scale,
			tick:    1 / scale,
			decs:    in.decimals,
			params:  paramsFor(in.kind),
			tPrefix: []byte(`{"ev":"T","sym":"` + name + `","p":`),
			qPrefix: []byte(`{"ev":"Q","sym":"` + name + `","bp":`),
			qtPre:   []byte(`{"symbol":"` + name + `","bid":`),
			rng:     rand.New(rand.NewPCG(uint64(seed), uint64(i)+1)),
			mid:     in.price,
			last:    in.price,
		}
	}
	return out
}

func (s *symbol) round(x float64) float64 { return math.Round(x*s.scale) / s.scale }

// stepLocked advances the walk by one event: a small Gaussian step with a
// weak pull back to the base price, so long runs stay plausible.
func (s *symbol) stepLocked() {
	s.mid *= 1 + s.params.sigma*s.rng.NormFloat64()
	s.mid += 0.001 * (s.base - s.mid)
	if floor := 10 * s.tick; s.mid < floor {
		s.mid = floor
	}
}

// bidAskLocked returns the current quote, at least one tick wide.
func (s *symbol) bidAskLocked() (bid, ask float64) {
	spread := math.Max(s.tick, s.round(s.mid*s.params.spread))
	bid = s.round(s.mid - spread/2)
	return bid, s.round(bid + spread)
}

// appendEvent advances the walk and appends one data event, a trade (T) or
// a quote (Q) at random, as a JSON object.
func (s *symbol) appendEvent(b []byte, ts int64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stepLocked()
	bid, ask := s.bidAskLocked()
	if s.rng.IntN(2) == 0 {
		p := s.round(bid + s.rng.Float64()*(ask-bid))
		s.last = p
		size := (s.params.lotMin + s.rng.IntN(s.params.lotMax-s.params.lotMin+1)) * s.params.lotMul
		b = append(b, s.tPrefix...)
		b = strconv.AppendFloat(b, p, 'f', -1, 64)
		b = append(b, `,"s":`...)
		b = strconv.AppendInt(b, int64(size), 10)
	} else {
		b = append(b, s.qPrefix...)
		b = strconv.AppendFloat(b, bid, 'f', -1, 64)
		b = append(b, `,"ap":`...)
		b = strconv.AppendFloat(b, ask, 'f', -1, 64)
	}
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}

// appendQuote advances the walk and appends the REST quote object
// {"symbol","bid","ask","last","ts"}.
func (s *symbol) appendQuote(b []byte, ts int64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stepLocked()
	bid, ask := s.bidAskLocked()
	b = append(b, s.qtPre...)
	b = strconv.AppendFloat(b, bid, 'f', -1, 64)
	b = append(b, `,"ask":`...)
	b = strconv.AppendFloat(b, ask, 'f', -1, 64)
	b = append(b, `,"last":`...)
	b = strconv.AppendFloat(b, s.last, 'f', -1, 64)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}
