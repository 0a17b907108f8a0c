# Headless Chromium helpers for the console checks (sourced by check.sh and cluster-check.sh).
# The caller sets $tmp (where DOMs go), $shots (screenshots) and defines fail MESSAGE.

# Longest one Chromium run may take, in seconds, and the page's script time before the DOM is
# taken (virtual time: the console polls the API every 2 s, so a couple of polls happen).
CHROMIUM_TIMEOUT_SECONDS=60
CHROMIUM_VIRTUAL_TIME_MS=5000

render() {  # render URL NAME: the DOM after scripts ran ($tmp/NAME.html), and a screenshot
  timeout "$CHROMIUM_TIMEOUT_SECONDS" chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --virtual-time-budget="$CHROMIUM_VIRTUAL_TIME_MS" --dump-dom "$1" >"$tmp/$2.html" 2>/dev/null || fail "chromium could not render $1"
  timeout "$CHROMIUM_TIMEOUT_SECONDS" chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
    --virtual-time-budget="$CHROMIUM_VIRTUAL_TIME_MS" --window-size=1280,1000 --screenshot="$shots/$2.png" "$1" >/dev/null 2>&1 ||
    fail "chromium could not screenshot $1"
}

expect() {  # expect NAME REGEX WHAT: the rendered DOM matches
  grep -Eq "$2" "$tmp/$1.html" || { sed 's/></>\n</g' "$tmp/$1.html" | head -60 >&2; fail "$1 page does not show $3"; }
}

rows() {  # rows NAME SELECTOR: the rendered table rows whose <tr ...> starts with SELECTOR, one a line
  sed 's/<tr /\n<tr /g; s/<\/tr>/<\/tr>\n/g' "$tmp/$1.html" | grep -F "<tr $2" || true
}

expect_row() {  # expect_row NAME SELECTOR REGEX WHAT: the row(s) SELECTOR picks exist and every one matches
  local picked
  picked=$(rows "$1" "$2")
  [ -n "$picked" ] || { sed 's/></>\n</g' "$tmp/$1.html" | head -80 >&2; fail "$1 page has no row <tr $2 ($4)"; }
  if grep -Evq "$3" <<<"$picked"; then
    echo "$picked" >&2
    fail "$1 page: a row <tr $2 does not show $4"
  fi
}
