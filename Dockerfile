# syntax=docker/dockerfile:1
# hookwatch container image: build with the full toolchain, run on a slim image as a non-root user.

# ---- build: compile TypeScript and the better-sqlite3 native addon ----
FROM node:20-bookworm AS build
# node-gyp needs python3, make and g++ when no prebuilt better-sqlite3 binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev

# ---- runtime ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/data
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# The data directory exists in the image, owned by the runtime user and private to it (the
# database holds every endpoint's signing secret), so that a new named volume mounted on it
# inherits that ownership and mode: hookwatch's own 0700 mkdir does nothing to an existing one.
RUN mkdir -p /app/data && chown node:node /app/data && chmod 700 /app/data
USER node
EXPOSE 3000
VOLUME ["/app/data"]
# The slim image has no curl or wget: node itself probes /health (200 healthy, 503 not).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Run node directly (not npm) so that SIGTERM reaches the service and it shuts down gracefully.
# The preload registers tracing before the app's imports, so HTTP and Express spans are recorded.
CMD ["node", "--import", "./dist/telemetry/preload.js", "dist/main.js"]
