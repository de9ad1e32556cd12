# Lectern, multi-stage: build the binaries with the models and runtimes they load,
# then a slim image that runs any one of them (see docker-compose.yml).
FROM rust:1.95-bookworm AS build
# cmake and libclang build llama.cpp (llama-cpp-sys-2); build with
# `--build-arg FEATURES=cuda` on an nvidia/cuda devel base image for GPU inference.
ARG FEATURES=""
# llama.cpp is built for any x86-64 CPU (a portable image). For an image that runs only on
# CPUs with AVX2 and FMA (x86 servers since 2013) and decodes ~10% faster, add
# `--build-arg GGML_AVX2=ON --build-arg GGML_FMA=ON --build-arg GGML_F16C=ON`.
ARG GGML_AVX2
ARG GGML_FMA
ARG GGML_F16C
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip unzip pkg-config cmake clang libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ENV LECTERN_CACHE_DIR=/opt/lectern CARGO_TARGET_DIR=/src/target
RUN scripts/fetch-assets.sh core pdfium llm > /dev/null
RUN cargo build --release --locked ${FEATURES:+--features lectern-llm/$FEATURES} -p lectern -p lectern-ingest -p lectern-query -p lectern-web \
    && mkdir -p /out && cp target/release/lectern target/release/lectern-ingest \
       target/release/lectern-query target/release/lectern-web /out/

FROM debian:bookworm-slim
# Tesseract reads scanned pages; add tesseract-ocr-LANG packages for the languages in
# `ocr.languages`.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libgomp1 \
       tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/lectern --create-home lectern
COPY --from=build /out/ /usr/local/bin/
COPY --from=build /opt/lectern/assets /opt/lectern/assets
ENV LECTERN_CACHE_DIR=/opt/lectern LECTERN_DATA_DIR=/var/lib/lectern LECTERN_BIND=0.0.0.0:8080
USER lectern
WORKDIR /var/lib/lectern
EXPOSE 8080
CMD ["lectern", "serve"]
