package testdata

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ProvenanceFile is the name of the file beside a manifest that says where each
// clip's reference came from (speech-zh/provenance.tsv).
const ProvenanceFile = "provenance.tsv"

// maxProvenanceBytes bounds what LoadProvenance reads: the file is a few kilobytes.
const maxProvenanceBytes = 1 << 20

// Provenance is where the references of a manifest came from, by clip id.
type Provenance map[string]string // id → reference_quality ("human", "author-provided", "model-output; doubtful", …)

// HumanReference reports whether a person wrote the clip's reference: its
// reference_quality is anything but "model-output" (which another ASR model printed,
// so scoring against it measures agreement with that model, not accuracy). A clip the
// file does not list counts as human-written.
func (p Provenance) HumanReference(id string) bool {
	q, ok := p[id]
	return !ok || !strings.HasPrefix(strings.TrimSpace(q), "model-output")
}

// LoadProvenance reads a provenance.tsv (tab-separated, with a header naming at least
// id and reference_quality). Files over 1 MiB are refused (ErrManifest).
func LoadProvenance(path string) (Provenance, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxProvenanceBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than %d: %w", path, st.Size(), maxProvenanceBytes, ErrManifest)
	}
	rows, err := readTSV(path, "id", "reference_quality")
	if err != nil {
		return nil, err
	}
	p := make(Provenance, len(rows))
	for _, r := range rows {
		p[r["id"]] = r["reference_quality"]
	}
	return p, nil
}

// ProvenanceFor loads the provenance.tsv beside manifest. ok is false, with no
// error, when there is none, or when it has no reference_quality column (the English
// set's names each file's source and says nothing of who wrote the references).
func ProvenanceFor(manifest string) (p Provenance, ok bool, err error) {
	path := filepath.Join(filepath.Dir(manifest), ProvenanceFile)
	has, err := headerHas(path, "reference_quality")
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !has) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	p, err = LoadProvenance(path)
	if err != nil {
		return nil, false, err
	}
	return p, true, nil
}

// headerHas says whether the tab-separated file's first line names column.
func headerHas(path, column string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return slices.Contains(strings.Split(strings.TrimRight(line, "\r\n"), "\t"), column), nil
}
