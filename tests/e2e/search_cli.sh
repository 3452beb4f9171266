#!/usr/bin/env bash
# `moongate index` and `moongate search` end to end: a folder of Markdown, text, HTML and
# JSONL; summaries, readable hits, TREC runs, tenants, re-indexing, and argument errors.
set -euo pipefail
mg=${MOONGATE:?MOONGATE is not set}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_eq() { [ "$1" == "$2" ] || fail "$3: expected [$2], got [$1]"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

mkdir -p "$work/docs/sub"
cat > "$work/docs/keys.md" <<'EOF'
# API keys

## Rotating

To rotate a key, create a new key, deploy it, then revoke the old one.
EOF
printf 'Invoices are sent on the first day of each month.\n' > "$work/docs/billing.txt"
printf '<html><body><h1>Quotas</h1><p>Quotas reset at midnight UTC.</p></body></html>\n' > "$work/docs/sub/quotas.html"
cat > "$work/docs/tenants.jsonl" <<'EOF'
{"_id": "acme-1", "title": "Acme runbook", "text": "The acme deploy runbook covers rollbacks.", "tenant": "acme"}
{"_id": "pub-1", "title": "Public runbook", "text": "The public deploy runbook covers canaries.", "team": "ops"}
EOF
printf 'ignored' > "$work/docs/image.png"

out=$("$mg" index --index "$work/idx" "$work/docs")
expect_eq "$out" "indexed 5 documents from 4 files into $work/idx: 5 added, 0 changed, 0 unchanged, 0 deleted
$(echo "$out" | sed -n 2p)
1 files skipped (not .md, .txt, .html or .jsonl)" "index summary"
echo "$out" | sed -n 2p | grep -Eq '^5 chunks, [0-9]+ tokens \(cl100k_base\), 0 duplicates dropped, 5 chunks searchable, [0-9.]+ s; version 1$' \
  || fail "index summary line 2: $out"

# readable hits
out=$("$mg" search --index "$work/idx" --top 1 how do I rotate a key)
expect_eq "$(echo "$out" | head -1 | sed 's/  (score.*//')" " 1. $work/docs/keys.md > API keys" "text hit"
expect_eq "$(echo "$out" | sed -n 2p)" "    # API keys ## Rotating To rotate a key, create a new key, deploy it, then revoke the old one." "hit text"

# TREC run: qid Q0 docid rank score tag, one line per document
printf '{"_id": "q1", "text": "deploy runbook"}\n{"_id": "q2", "text": "quotas midnight"}\n' > "$work/q.jsonl"
out=$("$mg" search --index "$work/idx" --mode bm25 --format trec --queries "$work/q.jsonl")
expect_eq "$(echo "$out" | awk '{print $1, $2, $3, $4, $6}')" "q1 Q0 pub-1 1 moongate-bm25
q1 Q0 $work/docs/keys.md 2 moongate-bm25
q2 Q0 $work/docs/sub/quotas.html 1 moongate-bm25" "trec run"

# tenants: acme sees only its own document
out=$("$mg" search --index "$work/idx" --tenant acme --format trec --top 5 deploy runbook)
expect_eq "$(echo "$out" | awk '{print $3}')" "acme-1" "tenant isolation"
out=$("$mg" search --index "$work/idx" --filter team=ops --format trec --mode bm25 runbook)
expect_eq "$(echo "$out" | awk '{print $3}')" "pub-1" "metadata filter"

# JSON lines carry scores and the version
out=$("$mg" search --index "$work/idx" --format json --top 1 --mode bm25 invoices)
echo "$out" | grep -q '"doc_id":"'"$work"'/docs/billing.txt"' || fail "json hit: $out"
echo "$out" | grep -q '"version":1' || fail "json version: $out"

# re-index: one file changed, one removed
printf 'Invoices are sent on the fifth day of each month.\n' > "$work/docs/billing.txt"
rm "$work/docs/sub/quotas.html"
out=$("$mg" index --index "$work/idx" "$work/docs" | head -1)
expect_eq "$out" "indexed 4 documents from 3 files into $work/idx: 0 added, 1 changed, 3 unchanged, 1 deleted" "re-index"
out=$("$mg" search --index "$work/idx" --mode bm25 quotas midnight)
expect_eq "$out" "no results" "deleted file"

# a version whose files no longer load (damaged, or written by an older format) is built
# again from the database by the next `moongate index`, even when no document changed
v=$(ls -d "$work/idx"/v* | sort -V | tail -1)
printf 'garbage' > "$v/bm25.bin"
set +e
err=$("$mg" search --index "$work/idx" rotate 2>&1); rc=$?
set -e
expect_eq "$rc $err" "1 moongate search: cannot load index version ${v##*/v}: not a bm25 index" "damaged index file"
out=$("$mg" index --index "$work/idx" "$work/docs" | sed -n 2p)
echo "$out" | grep -Eq "; version $(( ${v##*/v} + 1 ))\$" || fail "rebuilt as a new version: $out"
out=$("$mg" search --index "$work/idx" --top 1 --format trec rotate | awk '{print $3}')
expect_eq "$out" "$work/docs/keys.md" "searchable again"

# errors: exit 2 for usage, 1 for failures, with a clear message
set +e
err=$("$mg" search --index "$work/idx" --mode fuzzy x 2>&1); rc=$?
expect_eq "$rc:$err" "2:moongate search: --mode must be bm25, dense or hybrid" "bad mode"
err=$("$mg" search --index "$work/nope" x 2>&1); rc=$?
expect_eq "$rc:$err" "1:moongate search: no index at $work/nope" "missing index"
err=$("$mg" index --index "$work/idx" "$work/missing.md" 2>&1); rc=$?
expect_eq "$rc:$err" "1:moongate index: cannot read $work/missing.md" "missing file"
printf '{"_id": "x", "text": 1}\n' > "$work/bad.jsonl"
err=$("$mg" index --index "$work/idx2" "$work/bad.jsonl" 2>&1); rc=$?
expect_eq "$rc:$err" "1:moongate index: $work/bad.jsonl:1: document x has no text" "bad jsonl"
err=$("$mg" index 2>&1 | head -1); 
expect_eq "$err" "moongate index: no PATH given" "no path"
"$mg" search --help | grep -q '^usage: moongate search --index DIR' || fail "search --help"
"$mg" index --help | grep -q '^usage: moongate index \[--index DIR\]' || fail "index --help"
set -e

# a remote embedder: any /v1/embeddings API (here moongate's mock upstream)
port=$(free_port)
"$mg" mock --listen "127.0.0.1:$port" >/dev/null 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v1/models" >/dev/null 2>&1 && break; sleep 0.1; done
out=$("$mg" index --index "$work/remote" --embedder openai --embedder-url "http://127.0.0.1:$port/v1/embeddings" \
  --embedder-model text-embedding-3-small "$work/docs" | sed -n 2p)
echo "$out" | grep -Eq '^4 chunks, .* version 1$' || fail "remote embedder index: $out"
out=$("$mg" search --index "$work/remote" --mode dense --format trec --top 10 invoices | wc -l)
expect_eq "$out" "3" "remote embedder dense search (3 documents without a tenant)"
out=$("$mg" search --index "$work/remote" --format trec --top 1 invoices first day | awk '{print $3}')
expect_eq "$out" "$work/docs/billing.txt" "remote embedder hybrid search"
kill $mock 2>/dev/null || true

# a cross-encoder behind a /v1/rerank-style API: this one puts chunks saying "revoke" first
cat > "$work/rerank.py" <<'PY'
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        docs = body.get("documents") or body.get("texts")
        scores = [0.9 if "revoke" in d else 0.1 for d in docs]
        if "documents" in body:
            out = {"results": [{"index": i, "relevance_score": s} for i, s in enumerate(scores)]}
        else:
            out = [{"index": i, "score": s} for i, s in enumerate(scores)]
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
rport=$(free_port)
python3 "$work/rerank.py" "$rport" &
rr=$!
trap 'kill $rr 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null -X POST -d '{"texts":[]}' "http://127.0.0.1:$rport/rerank" && break; sleep 0.1; done
out=$("$mg" search --index "$work/idx" --mode bm25 --format trec deploy | awk '{print $3}' | tr '\n' ' ')
expect_eq "$out" "pub-1 $work/docs/keys.md " "before re-ranking"
for style in cohere tei; do
  out=$("$mg" search --index "$work/idx" --mode bm25 --rerank-url "http://127.0.0.1:$rport/rerank" \
    --rerank-style $style --format json deploy |
    python3 -c 'import json, sys; print(" ".join("%s %s" % (h["doc_id"], h["scores"]["rerank"]) for h in map(json.loads, sys.stdin)), end=" ")')
  expect_eq "$out" "$work/docs/keys.md 0.9 pub-1 0.1 " "re-ranked by the API ($style)"
done
set +e
err=$("$mg" search --index "$work/idx" --rerank-url "http://127.0.0.1:1/rerank" deploy 2>&1); rc=$?
set -e
expect_eq "$rc" "1" "rerank API down: exit code"
echo "$err" | grep -q '^moongate search: rerank: ' || fail "rerank API down: $err"
kill $rr 2>/dev/null || true
echo "search_cli: all passed"
