# The operator's image, for those who build with Docker. hack/image.sh builds
# the same content without Docker (the release binary with the glibc it
# links, CA certificates, user 65532, nothing else).
#   docker build -t ghcr.io/publicdata-io/publicdata-operator:0.1.0 .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p publicdata-operator --bin publicdata-operator \
 && strip --strip-debug target/release/publicdata-operator

# distroless/cc: glibc, libgcc, CA certificates and a nonroot user (65532); no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/publicdata-operator /usr/local/bin/publicdata-operator
USER 65532:65532
# In the image, OpenBao's address and the credentials come from the
# container's environment only, never from a command line (`kubectl exec`).
ENV PUBLICDATA_IMAGE=1
ENTRYPOINT ["/usr/local/bin/publicdata-operator"]
