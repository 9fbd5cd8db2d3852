package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
)

// findNginx resolves the -nginx flag to a binary, or "" when nginx is off or absent.
func findNginx(flag string) (string, error) {
	switch flag {
	case "off":
		return "", nil
	case "auto":
		if p, err := exec.LookPath("nginx"); err == nil {
			return p, nil
		}
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			return "/usr/sbin/nginx", nil
		}
		return "", nil
	}
	if _, err := os.Stat(flag); err != nil {
		return "", fmt.Errorf("-nginx %q: %w", flag, err)
	}
	return flag, nil
}

// nginxVersion is what `nginx -v` reports, e.g. "nginx/1.22.1".
func nginxVersion(bin string) string {
	out, _ := exec.Command(bin, "-v").CombinedOutput()
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
}

// nginxConf is nginx as it is deployed in front of a webhook: proxy_pass with a pool of
// kept-alive upstream connections. Every path points into the run's directory so nothing
// of the system's nginx is touched. keepalive_requests is raised so that nginx, like the
// fasthttp servers, does not close a connection every 1000 requests.
var nginxConf = template.Must(template.New("nginx").Parse(`{{if .Root}}user root;
{{end}}worker_processes auto;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path {{.Dir}}/nginx-body;
    proxy_temp_path {{.Dir}}/nginx-proxy;
    fastcgi_temp_path {{.Dir}}/nginx-fastcgi;
    uwsgi_temp_path {{.Dir}}/nginx-uwsgi;
    scgi_temp_path {{.Dir}}/nginx-scgi;
    keepalive_requests 1000000;
    upstream stub {
        server {{.Upstream}};
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen {{.Listen}};
        location / {
            proxy_pass http://stub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`))

// startNginx writes the configuration into dir and runs nginx in the foreground.
func startNginx(ctx context.Context, dir, bin, upstream string) (*system, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	f, err := os.Create(conf)
	if err != nil {
		return nil, fmt.Errorf("cannot write the nginx configuration: %w", err)
	}
	err = nginxConf.Execute(f, map[string]any{
		"Root": os.Geteuid() == 0, "Dir": dir, "Upstream": upstream, "Listen": addr,
	})
	if err = errors.Join(err, f.Close()); err != nil {
		return nil, fmt.Errorf("cannot write the nginx configuration: %w", err)
	}
	// -e: errors found before the configuration is read go to the run's directory too,
	// not to the system's log directory.
	p, err := startProc(ctx, dir, nameNginx, bin, "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"),
		"-c", conf, "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, p, "http://"+addr+"/"); err != nil {
		p.stop()
		return nil, err
	}
	return &system{name: nameNginx, addr: addr, proc: p}, nil
}
