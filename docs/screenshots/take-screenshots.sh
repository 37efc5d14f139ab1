#!/bin/bash
# Retakes the window screenshots in this folder from a built tree, under Xvfb:
#   docs/screenshots/take-screenshots.sh [BUILD_DIR] [OUT_DIR]
# (defaults: build, docs/screenshots). The stories260K shots need
# ../shared/models beside the checkout. Not retaken here: the token-hover shot
# (under Xvfb the tooltip does not reach the grab), the PDF report page,
# system-info-*.png (a dialog, which the window's grab leaves out: taken from
# the Xvfb screen by hand), and telemetry-dock.png (BRISK_UPDATE_SCREENSHOTS=1
# with ui/test_telemetry).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
out=${2:-$root/docs/screenshots}
app=$build/app/brisk
story=$(realpath -m "$root/../shared/models/stories260K/stories260K.gguf")
[ -x "$app" ] || { echo "no $app: build the app first" >&2; exit 2; }
mkdir -p "$out"
export HOME=$(mktemp -d)  # the window's saved layout and results stay out of the user's
failed=0

shot() {  # NAME WxH VIEW [ARGS...]
  local name=$1 size=$2 view=$3
  shift 3
  if ! xvfb-run -a -s "-screen 0 ${size}x24" "$app" --view "$view" --size "$size" \
    --screenshot "$out/$name.png" --quit-after-ms 30000 "$@" >/dev/null 2>"$HOME/$name.log"; then
    echo "FAILED $name:" >&2
    cat "$HOME/$name.log" >&2
    failed=1
  fi
}

prompt="Once upon a time"
for size in 1280x800 1920x1080; do
  w=${size%x*}
  shot "settings-demo-$w" "$size" settings &
  shot "playground-demo-$w" "$size" playground --prompt "$prompt" &
  wait
  shot "chat-demo-$w" "$size" chat --prompt "Hello" &
  shot "ab-demo-$w" "$size" ab --prompt "$prompt" &
  wait
  shot "telemetry-demo-$w" "$size" telemetry --prompt "$prompt"
  if [ -f "$story" ]; then
    shot "settings-stories260k-$w" "$size" settings "$story" &
    shot "playground-stories260k-$w" "$size" playground --prompt "$prompt" "$story" &
    wait
    shot "chat-stories260k-$w" "$size" chat --prompt "Hello" "$story" &
    shot "ab-stories260k-$w" "$size" ab --prompt "$prompt" "$story" &
    wait
    shot "telemetry-stories260k-$w" "$size" telemetry --prompt "$prompt" "$story"
  fi
done
shot brisk-main 1280x800 telemetry --prompt "$prompt"
shot benchmark-view-1280 1280x800 benchmark &
shot compare-view-1280 1280x800 compare &
wait
if [ -f "$story" ]; then
  shot brisk-stories260k 1280x800 playground --prompt "$prompt" "$story" &
  shot settings-int8-stories260k-1280 1280x800 settings --dtype int8 --kv-dtype int8 "$story" &
  shot tokens-stories260k-1280 1280x800 tokens --prompt "$prompt" "$story" &
  wait
  # A small screen: Telemetry is a tab of the left column.
  shot settings-stories260k-1024 1024x700 settings "$story" &
  shot telemetry-stories260k-1024 1024x700 telemetry --prompt "$prompt" "$story" &
  wait
else
  echo "no $story: the stories260K shots were not retaken" >&2
fi
exit $failed
