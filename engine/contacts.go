package engine

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/ctwa-sidecar/ctwa-sidecar/kv"
)

// Contact is one lead of the contacts export (SPEC §6.4): the sessions of it that the
// filter selected, summed up.
type Contact struct {
	Lead        string
	LeadIsBSUID bool     // Lead is a business-scoped user id, not a phone number
	First, Last int64    // start of the first session, latest message of any (unix seconds)
	Sources     []string // SourceLabel of each source, in the order the lead met them
	Sessions    int
	Revenue     []Money // off-thread revenue in the app since From, by currency code; not rounded
}

// ExportID is how the export names the lead: its phone in E.164 with '+', or its BSUID.
func (c *Contact) ExportID() string {
	if c.LeadIsBSUID {
		return c.Lead
	}
	return PhoneE164(c.Lead)
}

// PhoneE164 writes a lead's WhatsApp number (digits with the country code, as webhooks
// carry it) in E.164 with '+', the form of both CSV exports (Meta's customer lists read
// it); "" stays "".
func PhoneE164(phone string) string {
	if phone == "" || phone[0] == '+' {
		return phone
	}
	return "+" + phone
}

// ContactColumns is the header row of the contacts export; Contact.Row fills its cells.
var ContactColumns = []string{"phone", "user_id", "first_seen", "last_seen", "source", "sessions",
	"revenue", "currency", "other_revenue"}

// Row writes c into cells, one per ContactColumns, and returns them: the phone in E.164
// with '+' or else the user id of a BSUID lead, the first and last seen times as format
// writes them, the sources in the order the lead met them, the sessions, and the revenue
// as a plain amount ("134.38", rounded to cents) beside its currency code, so that a
// sheet can sum the column and a customer list can use it as the lead's value. A lead
// who paid in several currencies has the first by code there and the others in
// other_revenue (RevenueText: "30.00 USD"), never summed; a lead without revenue has
// the three empty.
func (c *Contact) Row(cells []string, format func(unix int64) string) []string {
	amount, currency, others := "", "", ""
	if len(c.Revenue) > 0 {
		amount, currency = strconv.FormatFloat(Round2(c.Revenue[0].Amount), 'f', 2, 64), c.Revenue[0].Currency
		others = RevenueText(c.Revenue[1:])
	}
	cells = append(cells[:0], "", "", format(c.First), format(c.Last), strings.Join(c.Sources, " "),
		strconv.Itoa(c.Sessions), amount, currency, others)
	if c.LeadIsBSUID {
		cells[1] = c.Lead
	} else {
		cells[0] = c.ExportID()
	}
	return cells
}

// RevenueText writes revenue by currency, rounded to cents, in the order given (Contact
// keeps it by currency code): "49.90 EUR; 30.00 USD".
func RevenueText(revenue []Money) string {
	parts := make([]string, 0, len(revenue))
	for _, m := range revenue {
		parts = append(parts, strconv.FormatFloat(Round2(m.Amount), 'f', 2, 64)+" "+m.Currency)
	}
	return strings.Join(parts, "; ")
}

// ContactFilter selects the leads of a contacts export.
type ContactFilter struct {
	AppID     string
	From, To  int64  // sessions that started in [From, To), unix seconds
	SourceID  string // sessions of this source, by id or SourceLabel ("ad:123", "organic"); "" for any
	EventType string // leads with an event of this type in a selected session; "" for any
}

func (f *ContactFilter) selects(s *kv.Session) bool {
	return s.Start >= f.From && s.Start < f.To &&
		(f.SourceID == "" || f.SourceID == s.SourceID || f.SourceID == SourceLabel(s.SourceType, s.SourceID))
}

// SourceLabel is "type:id", or the type alone for sources without id (organic).
func SourceLabel(typ, id string) string {
	if id == "" {
		return typ
	}
	return typ + ":" + id
}

// offThreadRevenue returns the revenue of an off-thread event row, as decodeEvent read it.
func offThreadRevenue(ev *kv.Event) (float64, string, bool) {
	return ev.Amount, ev.Currency, !IsEventType(ev.Type) && ev.Currency != ""
}

// contactsSortBudget is the memory each of the export's two sorts may hold; beyond it they
// sort through a temporary file.
const contactsSortBudget = 4 << 20

// Contacts calls fn for every lead of f.AppID with a session that f selects, ordered by
// first session and then by ExportID, until fn returns false or ctx ends (then it returns
// context.Cause(ctx)). c is valid only during the call.
//
// Memory stays bounded whatever the number of leads. One snapshot of the store is read in
// lead order — the lead→sessions index — so that each lead's row is complete, and its
// state dropped, when its last session is read. What the app's events add to a row
// (revenue, and with f.EventType the sessions with such an event) is time-ordered: it is
// sorted by lead first and merged in. The rows are then sorted by first session. Each sort
// holds at most contactsSortBudget bytes; beyond that it writes sorted runs to an unlinked
// file in os.TempDir (about the size of the CSV) and merges them.
func (r *Recorder) Contacts(ctx context.Context, f ContactFilter, fn func(c *Contact) bool) error {
	r.mat.settle(ctx)
	return r.contacts(ctx, f, contactsSortBudget, fn)
}

func (r *Recorder) contacts(ctx context.Context, f ContactFilter, budget int, fn func(c *Contact) bool) error {
	x := &contactsExport{ctx: ctx, f: f, facts: spillSorter{budget: budget}, rows: spillSorter{budget: budget}}
	defer x.facts.close()
	defer x.rows.close()
	if err := r.views.Read(func(rd kv.Reader) error {
		x.rd = rd
		if err := x.collectFacts(); err != nil {
			return err
		}
		return x.collectContacts()
	}); err != nil {
		return err
	}
	x.facts.close() // its file, if any, is not needed any more
	it, err := x.rows.records()
	if err != nil {
		return err
	}
	var c Contact
	for n := 0; it.valid(); it.next() {
		if err := x.check(n); err != nil {
			return err
		}
		n++
		_, payload := it.record()
		if err := decodeContact(&c, payload); err != nil {
			return err
		}
		if !fn(&c) {
			return nil
		}
	}
	return it.err()
}

// contactsExport is the state of one Contacts call.
type contactsExport struct {
	ctx   context.Context
	f     ContactFilter
	rd    kv.Reader
	facts spillSorter // what events add to a lead: key lead, 0, sequence (8 bytes)
	rows  spillSorter // finished rows: key first session (8 bytes, order-preserving), ExportID
	seq   uint64
	key   []byte // scratch for keys
	ekey  []byte // scratch for event keys
	val   []byte // scratch for payloads
	cur   leadRow
}

// check returns the context's cause once it ended, looking at it every 256 steps.
func (x *contactsExport) check(n int) error {
	if n%256 == 0 && x.ctx.Err() != nil {
		return context.Cause(x.ctx)
	}
	return nil
}

// Facts about a lead that events bring, in the payload's first byte.
const (
	factRevenue   = 'r' // currency, amount (8 bytes, IEEE 754 bits)
	factEventType = 't' // conversation id of an event of f.EventType
)

// collectFacts sorts by lead what the app's events since f.From add to a lead's row: the
// revenue of off-thread events and, with f.EventType, the sessions with an event of that
// type. Only off-thread events have revenue or a type that is no event type, so unless
// f.EventType is an event type their index is enough; the event rows are read either way,
// in time order, so that revenue sums in the order it always did.
func (x *contactsExport) collectFacts() error {
	app := x.f.AppID
	var n int
	visit := func(v []byte) error {
		ev, err := decodeEvent(v)
		if err != nil {
			return err
		}
		return x.addFacts(&ev)
	}
	if x.f.EventType == "" || !IsEventType(x.f.EventType) {
		prefix := len(kv.OffThreadAppPrefix(app))
		return x.rd.ScanKeys(kv.OffThreadAppKey(app, x.f.From, ""), kv.OffThreadAppKey(app, 1<<62, ""),
			func(k []byte) (bool, error) {
				if err := x.check(n); err != nil {
					return false, err
				}
				n++
				if len(k) < prefix+8 {
					return false, fmt.Errorf("corrupt off-thread index key %q", k)
				}
				t, id := int64(binary.BigEndian.Uint64(k[prefix:])), string(k[prefix+8:])
				x.ekey = kv.EventKey(x.ekey[:0], app, t, id)
				_, err := x.rd.Get(x.ekey, visit) // none while a refresh rebuilds the app
				return err == nil, err
			})
	}
	return x.rd.ScanRange(kv.EventTimeKey(app, x.f.From), kv.EventTimeKey(app, 1<<62),
		func(_, v []byte) (bool, error) {
			if err := x.check(n); err != nil {
				return false, err
			}
			n++
			err := visit(v)
			return err == nil, err
		})
}

func (x *contactsExport) addFacts(ev *kv.Event) error {
	x.seq++
	if amount, currency, ok := offThreadRevenue(ev); ok && amount > 0 {
		x.val = append(append(x.val[:0], factRevenue), currency...)
		x.val = binary.BigEndian.AppendUint64(x.val, math.Float64bits(amount))
		if err := x.facts.add(x.factKey(ev.Lead), x.val); err != nil {
			return err
		}
	}
	if x.f.EventType != "" && ev.Type == x.f.EventType && ev.ConversationID != "" {
		x.val = append(append(x.val[:0], factEventType), ev.ConversationID...)
		return x.facts.add(x.factKey(ev.Lead), x.val)
	}
	return nil
}

func (x *contactsExport) factKey(lead string) []byte {
	x.key = append(append(x.key[:0], lead...), 0)
	return binary.BigEndian.AppendUint64(x.key, x.seq)
}

// factLead is the lead of a fact's key.
func factLead(key []byte) []byte { return key[:len(key)-9] }

// leadRow is the row of the lead being read.
type leadRow struct {
	lead     []byte
	c        Contact
	sources  []leadSource
	selected []string // ids of the selected sessions (with f.EventType)
	all      []string // ids of all of the lead's sessions of the app (with f.EventType)
	hasType  bool
}

// leadSource is a source of the lead and the start of its first selected session of it.
type leadSource struct {
	label string
	start int64
}

func (l *leadRow) reset(lead []byte) {
	l.lead = append(l.lead[:0], lead...)
	l.c = Contact{Sources: l.c.Sources[:0], Revenue: l.c.Revenue[:0]}
	l.sources, l.selected, l.all, l.hasType = l.sources[:0], l.selected[:0], l.all[:0], false
}

func (l *leadRow) add(s *kv.Session, keepID bool) {
	c := &l.c
	if c.Sessions == 0 {
		c.Lead, c.LeadIsBSUID, c.First = s.Lead, s.LeadIsBSUID, s.Start
	}
	c.First, c.Last = min(c.First, s.Start), max(c.Last, s.Last)
	c.Sessions++
	label := SourceLabel(s.SourceType, s.SourceID)
	if i := slices.IndexFunc(l.sources, func(src leadSource) bool { return src.label == label }); i >= 0 {
		l.sources[i].start = min(l.sources[i].start, s.Start)
	} else {
		l.sources = append(l.sources, leadSource{label: label, start: s.Start})
	}
	if keepID {
		l.selected = append(l.selected, s.ID)
	}
}

func (l *leadRow) addRevenue(currency string, amount float64) {
	for i := range l.c.Revenue {
		if l.c.Revenue[i].Currency == currency {
			l.c.Revenue[i].Amount += amount
			return
		}
	}
	l.c.Revenue = append(l.c.Revenue, Money{Currency: currency, Amount: amount})
}

// finish completes the row once the lead's sessions and facts are in: sources by their
// first session, then by label; revenue by currency.
func (l *leadRow) finish() {
	slices.SortFunc(l.sources, func(a, b leadSource) int {
		return cmp.Or(cmp.Compare(a.start, b.start), strings.Compare(a.label, b.label))
	})
	for _, src := range l.sources {
		l.c.Sources = append(l.c.Sources, src.label)
	}
	slices.SortFunc(l.c.Revenue, func(a, b Money) int { return strings.Compare(a.Currency, b.Currency) })
}

// collectContacts reads the lead→sessions index, lead by lead, and sorts the row of each
// lead with a selected session (and, with f.EventType, an event of that type in one).
func (x *contactsExport) collectContacts() error {
	facts, err := x.facts.records()
	if err != nil {
		return err
	}
	x.cur.reset(nil)
	var n int
	err = kv.LeadSessions(x.rd, func(lead []byte, start int64, app, id []byte) (bool, error) {
		if err := x.check(n); err != nil {
			return false, err
		}
		n++
		if !bytes.Equal(lead, x.cur.lead) {
			if err := x.finishLead(facts); err != nil {
				return false, err
			}
			x.cur.reset(lead)
		}
		if string(app) != x.f.AppID {
			return true, nil
		}
		if x.f.EventType != "" {
			x.cur.all = append(x.cur.all, string(id))
		}
		if start < x.f.From || start >= x.f.To {
			return true, nil // the index has the session's start: no need to read it
		}
		s, ok, err := x.session(string(id))
		if ok && x.f.selects(&s) {
			x.cur.add(&s, x.f.EventType != "")
		}
		return err == nil, err
	})
	if err == nil {
		err = x.finishLead(facts)
	}
	if err == nil {
		err = facts.err()
	}
	return err
}

func (x *contactsExport) session(id string) (s kv.Session, ok bool, err error) {
	x.key = kv.SessionKey(x.key[:0], x.f.AppID, id)
	ok, err = x.rd.Get(x.key, func(v []byte) error {
		s, err = kv.DecodeSession(v)
		return err
	})
	return s, ok, err
}

// finishLead merges the facts of the current lead into its row and sorts the row in.
func (x *contactsExport) finishLead(facts recordIter) error {
	l := &x.cur
	if l.c.Sessions == 0 {
		return nil // its facts, if any, are skipped with those of the next lead
	}
	if x.f.EventType != "" {
		slices.Sort(l.selected)
		slices.Sort(l.all)
	}
	for ; facts.valid(); facts.next() {
		key, payload := facts.record()
		c := bytes.Compare(factLead(key), l.lead)
		if c > 0 {
			break
		}
		if c == 0 {
			if err := x.applyFact(payload); err != nil {
				return err
			}
		}
	}
	if x.f.EventType != "" && !l.hasType {
		return nil
	}
	l.finish()
	x.key = binary.BigEndian.AppendUint64(x.key[:0], uint64(l.c.First)^(1<<63)) // in signed order
	x.key = append(x.key, l.c.ExportID()...)
	x.val = appendContact(x.val[:0], &l.c)
	return x.rows.add(x.key, x.val)
}

func (x *contactsExport) applyFact(p []byte) error {
	l := &x.cur
	switch p[0] {
	case factRevenue:
		if len(p) < 9 {
			return errCorruptSpill
		}
		l.addRevenue(string(p[1:len(p)-8]), math.Float64frombits(binary.BigEndian.Uint64(p[len(p)-8:])))
	case factEventType:
		if l.hasType {
			return nil
		}
		conv := string(p[1:])
		_, isSelected := slices.BinarySearch(l.selected, conv)
		_, isLeads := slices.BinarySearch(l.all, conv)
		switch {
		case isSelected:
			l.hasType = true
		case !isLeads:
			// Another lead's session (an off-thread event credited through the earlier
			// event of previous_external_event_id): it counts if it was selected.
			s, ok, err := x.session(conv)
			if err != nil {
				return err
			}
			l.hasType = ok && x.f.selects(&s)
		}
	default:
		return errCorruptSpill
	}
	return nil
}

func appendContact(dst []byte, c *Contact) []byte {
	dst = appendString(dst, c.Lead)
	if c.LeadIsBSUID {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendVarint(binary.AppendVarint(dst, c.First), c.Last)
	dst = binary.AppendUvarint(dst, uint64(c.Sessions))
	dst = binary.AppendUvarint(dst, uint64(len(c.Sources)))
	for _, s := range c.Sources {
		dst = appendString(dst, s)
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.Revenue)))
	for _, m := range c.Revenue {
		dst = binary.BigEndian.AppendUint64(appendString(dst, m.Currency), math.Float64bits(m.Amount))
	}
	return dst
}

func decodeContact(c *Contact, b []byte) error {
	d := spillDecoder{b: b}
	c.Lead = d.str()
	c.LeadIsBSUID = d.byte() == 1
	c.First, c.Last = d.varint(), d.varint()
	c.Sessions = int(d.uvarint())
	c.Sources = c.Sources[:0]
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		c.Sources = append(c.Sources, d.str())
	}
	c.Revenue = c.Revenue[:0]
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		cur := d.str()
		c.Revenue = append(c.Revenue, Money{Currency: cur, Amount: math.Float64frombits(d.uint64())})
	}
	return d.err
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

var errCorruptSpill = errors.New("contacts export: corrupt sort record")

// spillDecoder reads what appendContact wrote; the first failure sticks.
type spillDecoder struct {
	b   []byte
	err error
}

func (d *spillDecoder) fail() { d.err, d.b = errCorruptSpill, nil }

func (d *spillDecoder) uvarint() uint64 {
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *spillDecoder) varint() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *spillDecoder) str() string {
	n := d.uvarint()
	if uint64(len(d.b)) < n {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *spillDecoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *spillDecoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// spillSorter sorts records — a key and a payload — by key in bounded memory. Records
// are kept in one buffer of at most budget bytes; when it is full it is sorted and
// written as a run to a temporary file (unlinked at once where the system allows), and
// the runs are merged when the records are read back, at most maxMergeRuns at a time.
type spillSorter struct {
	budget int
	buf    []byte  // records: uvarint key length, uvarint payload length, key, payload
	offs   []int32 // where each record of buf starts
	file   *os.File
	name   string // the file's name while it still has one
	runs   []spillRun
	end    int64 // bytes written to file
	w      *bufio.Writer
}

type spillRun struct{ off, n int64 }

// maxMergeRuns bounds the runs merged at once (each holds a read buffer of spillReadBuf).
const (
	maxMergeRuns = 64
	spillReadBuf = 16 << 10
)

func (s *spillSorter) add(key, payload []byte) error {
	n := 2*binary.MaxVarintLen32 + len(key) + len(payload)
	if len(s.offs) > 0 && len(s.buf)+n > s.budget {
		if err := s.spill(); err != nil {
			return err
		}
	}
	if len(s.buf)+n > math.MaxInt32 {
		return fmt.Errorf("contacts export: a sort record of %d bytes", n)
	}
	s.offs = append(s.offs, int32(len(s.buf)))
	s.buf = binary.AppendUvarint(s.buf, uint64(len(key)))
	s.buf = binary.AppendUvarint(s.buf, uint64(len(payload)))
	s.buf = append(append(s.buf, key...), payload...)
	return nil
}

// at returns the record at off in buf, and its length there.
func (s *spillSorter) at(off int32) (key, payload []byte, n int) {
	b := s.buf[off:]
	kl, k1 := binary.Uvarint(b)
	pl, k2 := binary.Uvarint(b[k1:])
	h := k1 + k2
	return b[h : h+int(kl)], b[h+int(kl) : h+int(kl)+int(pl)], h + int(kl) + int(pl)
}

func (s *spillSorter) sortBuf() {
	slices.SortFunc(s.offs, func(a, b int32) int {
		ka, _, _ := s.at(a)
		kb, _, _ := s.at(b)
		return bytes.Compare(ka, kb)
	})
}

// spill writes the buffer, sorted, as a run at the end of the file.
func (s *spillSorter) spill() error {
	s.sortBuf()
	if err := s.open(); err != nil {
		return err
	}
	start := s.end
	for _, off := range s.offs {
		_, _, n := s.at(off)
		if _, err := s.w.Write(s.buf[off : int(off)+n]); err != nil {
			return s.writeError(err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return s.writeError(err)
	}
	s.runs = append(s.runs, spillRun{off: start, n: s.end - start})
	s.buf, s.offs = s.buf[:0], s.offs[:0]
	return nil
}

func (s *spillSorter) open() error {
	if s.file != nil {
		return nil
	}
	f, err := os.CreateTemp("", "ctwa-sidecar-export-*")
	if err != nil {
		return fmt.Errorf("contacts export: cannot create a temporary file to sort in: %w", err)
	}
	s.file, s.name = f, f.Name()
	if os.Remove(s.name) == nil {
		s.name = "" // gone with the last descriptor, even if the process dies
	}
	s.w = bufio.NewWriterSize(spillAppender{s}, 64<<10)
	return nil
}

func (s *spillSorter) writeError(err error) error {
	return fmt.Errorf("contacts export: cannot write to the temporary file it sorts in (in %s): %w", os.TempDir(), err)
}

// spillAppender writes at the end of the sorter's file.
type spillAppender struct{ s *spillSorter }

func (a spillAppender) Write(p []byte) (int, error) {
	n, err := a.s.file.WriteAt(p, a.s.end)
	a.s.end += int64(n)
	return n, err
}

// close releases the file; the sorter holds nothing after it.
func (s *spillSorter) close() {
	if s.file != nil {
		s.file.Close()
		if s.name != "" {
			os.Remove(s.name)
		}
	}
	*s = spillSorter{budget: s.budget}
}

// records returns the records sorted by key. No record may be added after it.
func (s *spillSorter) records() (recordIter, error) {
	if len(s.runs) == 0 {
		s.sortBuf()
		return &memRecords{s: s, i: 0}, nil
	}
	if len(s.offs) > 0 {
		if err := s.spill(); err != nil {
			return nil, err
		}
	}
	s.buf, s.offs = nil, nil
	for len(s.runs) > maxMergeRuns {
		if err := s.mergeRuns(maxMergeRuns); err != nil {
			return nil, err
		}
	}
	return s.merge(s.runs)
}

// mergeRuns merges the first n runs into one at the end of the file.
func (s *spillSorter) mergeRuns(n int) error {
	m, err := s.merge(s.runs[:n])
	if err != nil {
		return err
	}
	start := s.end
	var hdr [2 * binary.MaxVarintLen64]byte
	for ; m.valid(); m.next() {
		key, payload := m.record()
		h := binary.PutUvarint(hdr[:], uint64(len(key)))
		h += binary.PutUvarint(hdr[h:], uint64(len(payload)))
		if _, err := s.w.Write(hdr[:h]); err != nil {
			return s.writeError(err)
		}
		if _, err := s.w.Write(key); err != nil {
			return s.writeError(err)
		}
		if _, err := s.w.Write(payload); err != nil {
			return s.writeError(err)
		}
	}
	if err := m.err(); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return s.writeError(err)
	}
	s.runs = append(s.runs[n:], spillRun{off: start, n: s.end - start})
	return nil
}

func (s *spillSorter) merge(runs []spillRun) (*mergeRecords, error) {
	m := &mergeRecords{}
	for _, r := range runs {
		rr := &runReader{r: bufio.NewReaderSize(io.NewSectionReader(s.file, r.off, r.n), spillReadBuf)}
		ok, err := rr.read()
		if err != nil {
			return nil, err
		}
		if ok {
			m.h = append(m.h, rr)
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// recordIter walks sorted records: while valid, record is the current one (valid until
// next).
type recordIter interface {
	valid() bool
	record() (key, payload []byte)
	next()
	err() error
}

type memRecords struct {
	s *spillSorter
	i int
}

func (m *memRecords) valid() bool { return m.i < len(m.s.offs) }
func (m *memRecords) record() ([]byte, []byte) {
	k, p, _ := m.s.at(m.s.offs[m.i])
	return k, p
}
func (m *memRecords) next()      { m.i++ }
func (m *memRecords) err() error { return nil }

// mergeRecords merges runs through a heap of their readers.
type mergeRecords struct {
	h   runHeap
	e   error
	adv bool
}

func (m *mergeRecords) valid() bool { return m.e == nil && len(m.h) > 0 }
func (m *mergeRecords) record() ([]byte, []byte) {
	return m.h[0].key, m.h[0].payload
}
func (m *mergeRecords) err() error { return m.e }

func (m *mergeRecords) next() {
	ok, err := m.h[0].read()
	switch {
	case err != nil:
		m.e = err
	case ok:
		heap.Fix(&m.h, 0)
	default:
		heap.Pop(&m.h)
	}
}

type runReader struct {
	r            *bufio.Reader
	buf          []byte
	key, payload []byte
}

// read reads the run's next record; false at its end.
func (rr *runReader) read() (bool, error) {
	kl, err := binary.ReadUvarint(rr.r)
	if err == io.EOF {
		return false, nil
	}
	var pl uint64
	if err == nil {
		pl, err = binary.ReadUvarint(rr.r)
	}
	if err == nil && kl+pl > math.MaxInt32 {
		err = errCorruptSpill
	}
	if err == nil {
		rr.buf = slices.Grow(rr.buf[:0], int(kl+pl))[:kl+pl]
		_, err = io.ReadFull(rr.r, rr.buf)
	}
	if err != nil {
		return false, fmt.Errorf("contacts export: cannot read back the temporary file it sorts in: %w", err)
	}
	rr.key, rr.payload = rr.buf[:kl], rr.buf[kl:]
	return true, nil
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return bytes.Compare(h[i].key, h[j].key) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
