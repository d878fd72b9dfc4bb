#
# Varnish 7 in front of a pyedge static tree (or of anything that serves the
# same URLs: nginx with deploy/nginx/pyedge-tree.conf, `pyedge edge`, the
# origin itself). See README.md beside this file.
#
#  - Pages are kept for a day and dropped the moment they change:
#    `pyedge publish --purge http://THIS-VARNISH:6081` sends, after each batch,
#    `PURGE /` with an `xkey-purge: project/<name> … all-projects` header
#    (or, with --purge-mode urls, `PURGE /simple/<name>/` and so on).
#  - Every object is tagged (vmod xkey) from its URL, as PyPI tags its
#    responses: project/<name> for /simple/<name>/…, /pypi/<name>/…,
#    /serversig/<name>; all-projects for /simple/ and the tree-wide files.
#    Files under /packages/ are immutable and kept for a year.
#  - stale-if-error: purges are soft and objects keep a day of grace, so
#    when the backend is down (its probe fails, or a fetch fails) Varnish
#    answers from the copy it has, purged or expired, for up to a day.
#  - PEP 691: /simple/ pages vary on Accept, which is narrowed (vmod accept,
#    q-values weighed) to the one of the three types the tree has that the
#    client prefers, ?format= counting as Accept: each page is cached at most
#    three times, and one purge drops all three.
#
vcl 4.1;

import std;
import purge;
import xkey;
import accept;

# The tree's server. pyedge tests substitute the port.
backend tree {
    .host = "127.0.0.1";
    .port = "8081";
    .connect_timeout = 1s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
    .probe = {
        # Present in every published tree (and on the origin).
        .url = "/last-modified";
        .interval = 2s;
        .timeout = 1s;
        .window = 3;
        .threshold = 2;
        # Healthy from the start: no 503s while the first probes run.
        .initial = 2;
    }
}

# Who may purge: the publisher's host. Add yours.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_init {
    # The representations a Simple page has; anything else gets the HTML.
    new simple_types = accept.rule("text/html");
    simple_types.add("application/vnd.pypi.simple.v1+json");
    simple_types.add("application/vnd.pypi.simple.v1+html");
    simple_types.add("text/html");
}

sub vcl_recv {
    if (req.restarts == 0) {
        unset req.http.pyedge-stale;
    }

    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.xkey-purge) {
            # Soft: the objects stay as grace, for stale-if-error.
            set req.http.pyedge-gone = xkey.softpurge(req.http.xkey-purge);
            return (synth(200, "Purged " + req.http.pyedge-gone + " objects"));
        }
        # By URL: vcl_hit / vcl_miss purge every variant of it.
        set req.url = regsub(req.url, "\?.*$", "");
        return (hash);
    }

    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    unset req.http.Cookie;

    if (req.url ~ "^/simple/") {
        # ?format= chooses like Accept (PEP 691); then one cache entry per representation.
        if (req.url ~ "[?&]format=") {
            set req.http.Accept = regsub(req.url, "^.*[?&]format=([^&]*).*$", "\1");
            set req.http.Accept = regsuball(req.http.Accept, "%2[Bb]", "+");
            set req.http.Accept = regsuball(req.http.Accept, "%2[Ff]", "/");
        }
        set req.url = regsub(req.url, "\?.*$", "");
        set req.http.Accept = simple_types.filter(req.http.Accept);
    }

    if (req.http.pyedge-stale) {
        # The backend just failed this request: anything we still hold will do.
        set req.grace = 24h;
    } elsif (std.healthy(req.backend_hint)) {
        # Fresh objects only: a purged page is fetched again at once.
        set req.grace = 0s;
    } else {
        set req.grace = 24h;
    }
    return (hash);
}

sub vcl_hash {
    # One site: the Host header does not matter, so purges need not match it.
    hash_data(req.url);
    return (lookup);
}

sub vcl_hit {
    if (req.method == "PURGE") {
        return (synth(200, "Purged " + purge.soft() + " objects"));
    }
}

sub vcl_miss {
    if (req.method == "PURGE") {
        return (synth(200, "Purged " + purge.soft() + " objects"));
    }
}

sub vcl_backend_response {
    # A failing backend must not replace what we hold: abandon, and vcl_synth
    # retries the request from the stale copy.
    if (beresp.status >= 500) {
        return (abandon);
    }

    # Surrogate keys from the URL (a bucket or a plain folder sends none),
    # names normalized as PEP 503 does.
    if (bereq.url ~ "^/(simple|pypi|serversig)/[^/?]+") {
        set beresp.http.xkey = "project/" + std.tolower(regsuball(
            regsub(bereq.url, "^/(simple|pypi|serversig)/([^/?]+).*$", "\2"), "[-_.]+", "-"));
    } elsif (bereq.url ~ "^/simple/(index\.[a-z0-9_]+)?$" || bereq.url ~ "^/(last-modified|serverkey|pyedge-state\.json)$") {
        set beresp.http.xkey = "all-projects";
    } elsif (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    } elsif (beresp.http.x-amz-meta-surrogate-key) {
        set beresp.http.xkey = beresp.http.x-amz-meta-surrogate-key;
    }

    if (bereq.url ~ "^/packages/" && beresp.status == 200) {
        # Content-addressed: a path never changes its bytes.
        set beresp.ttl = 365d;
    } elsif (beresp.status == 200 || beresp.status == 301 || beresp.status == 302) {
        # Purged when they change.
        set beresp.ttl = 1d;
    } else {
        # 404 and the like: tagged too, so a project's first page shows at once anyway.
        set beresp.ttl = 60s;
    }
    set beresp.grace = 24h;
    set beresp.keep = 1h;
}

sub vcl_backend_error {
    return (abandon);
}

sub vcl_synth {
    if (req.method == "PURGE") {
        set resp.http.Content-Type = "text/plain; charset=utf-8";
        set resp.body = resp.reason + {"
"};
        return (deliver);
    }
    # Backend down or failing: try once more, allowing a stale copy (stale-if-error).
    if (resp.status == 503 && req.restarts == 0 && (req.method == "GET" || req.method == "HEAD")) {
        set req.http.pyedge-stale = "1";
        return (restart);
    }
}

sub vcl_deliver {
    if (obj.hits > 0 && obj.ttl <= 0s) {
        set resp.http.X-Cache = "STALE";
    } elsif (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # The keys go on as Surrogate-Key, for a CDN in front; Surrogate-Control was for us.
    if (resp.http.xkey && !resp.http.Surrogate-Key) {
        set resp.http.Surrogate-Key = resp.http.xkey;
    }
    unset resp.http.xkey;
    unset resp.http.Surrogate-Control;
    unset resp.http.x-amz-meta-surrogate-key;
    unset resp.http.x-amz-meta-surrogate-control;
}
