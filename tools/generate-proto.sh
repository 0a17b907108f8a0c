#!/usr/bin/env bash
# Regenerates Sources/SpoolProtocol/Generated/*.pb.swift from proto/*.proto.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift, which this script
# builds from the swift-protobuf version the package uses (once, in .build-protoc).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
plugin="${PROTOC_GEN_SWIFT:-}"
if [ -z "$plugin" ]; then
  # The package's own checkout of swift-protobuf (after `swift build`), else a clone.
  src=.build/checkouts/swift-protobuf
  if [ ! -d "$src" ]; then
    src=.build-protoc/swift-protobuf
    [ -d "$src" ] || git clone -q --branch 1.39.0 https://github.com/apple/swift-protobuf "$src"
  fi
  swift build -c release --package-path "$src" --scratch-path .build-protoc/build --product protoc-gen-swift >&2
  plugin=.build-protoc/build/release/protoc-gen-swift
fi
out=Sources/SpoolProtocol/Generated
mkdir -p "$out"
protoc --plugin=protoc-gen-swift="$plugin" --swift_out="$out" --swift_opt=Visibility=Public -I proto proto/spool.proto
echo "generated $out/spool.pb.swift"
