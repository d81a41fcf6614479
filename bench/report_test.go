package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// report is the Markdown of the results file, written as the driver
// measures: a summary, one line per measure, then the sections.
type report struct {
	summary []string
	// machine are the rows of the table that describes the machine.
	machine [][]string
	buf     strings.Builder
}

// summarize adds a line to the summary.
func (r *report) summarize(format string, args ...any) {
	r.summary = append(r.summary, fmt.Sprintf(format, args...))
}

// markdown returns the whole results file: the title, intro, summary,
// machine and sections.
func (r *report) markdown(title, intro string) string {
	head := report{}
	fmt.Fprintf(&head.buf, "# %s\n\n%s\n\n", title, intro)
	head.heading("Summary")
	for _, line := range r.summary {
		fmt.Fprintf(&head.buf, "- %s\n", line)
	}
	head.buf.WriteString("\n")
	head.heading("Machine")
	head.table([]string{"what", "value"}, r.machine)
	return head.buf.String() + r.buf.String()
}

func (r *report) heading(text string) {
	fmt.Fprintf(&r.buf, "## %s\n\n", text)
}

// para writes one paragraph.
func (r *report) para(format string, args ...any) {
	fmt.Fprintf(&r.buf, format, args...)
	r.buf.WriteString("\n\n")
}

// table writes a table with a header row.
func (r *report) table(header []string, rows [][]string) {
	row := func(cells []string) {
		r.buf.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	row(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---"
	}
	row(sep)
	for _, cells := range rows {
		row(cells)
	}
	r.buf.WriteString("\n")
}

// quantile returns the q-quantile (0 ≤ q ≤ 1) of xs by the nearest rank,
// the median for q = 0.5; xs must not be empty.
func quantile[T ~int64 | ~float64](xs []T, q float64) T {
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

// median returns the median of xs, which must not be empty.
func median[T ~int64 | ~float64](xs []T) T {
	return quantile(xs, 0.5)
}

// ms formats d in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// us formats d in microseconds.
func us(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// mib formats a number of bytes in MiB.
func mib(bytes int64) string {
	return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
}

// ratio formats a / b as a factor.
func ratio[T ~int64 | ~float64 | ~int](a, b T) string {
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}
