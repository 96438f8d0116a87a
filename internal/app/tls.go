package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// CertReloader serves a TLS certificate from a cert and key file pair and loads them
// again on Reload (and, with Run, on every SIGHUP), so a renewed certificate is picked
// up without a restart. A reload that fails is logged and the old certificate kept.
// Safe for concurrent use.
type CertReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
}

// NewCertReloader loads the pair once; an error here (missing or mismatched files) is
// fatal to the caller, unlike a later reload.
func NewCertReloader(certFile, keyFile string, log *slog.Logger) (*CertReloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, log: log}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s / key %s: %w", certFile, keyFile, err)
	}
	r.cert.Store(&c)
	return r, nil
}

// Reload reads the files again. On error the certificate in use is kept.
func (r *CertReloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Error("TLS certificate reload failed; keeping the old one", "cert", r.certFile, "err", err)
		return fmt.Errorf("reload TLS certificate %s: %w", r.certFile, err)
	}
	r.cert.Store(&c)
	r.log.Info("TLS certificate reloaded", "cert", r.certFile)
	return nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := r.cert.Load()
	if c == nil {
		return nil, errors.New("no TLS certificate loaded")
	}
	return c, nil
}

// TLSConfig is a server config that asks r for the certificate on every handshake.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// Run reloads on every SIGHUP until ctx ends. It always returns nil.
func (r *CertReloader) Run(ctx context.Context) error {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
			_ = r.Reload() // logged; the old certificate stays
		}
	}
}
