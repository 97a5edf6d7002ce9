import { defineConfig } from "vite";

// `npm run build` writes into the Go package that embeds the app
// (internal/web/dist/app); `npm run dev` serves it on localhost:5173 and
// calls the API of `make run` (see src/api.ts, VITE_API_URL).
export default defineConfig({
  build: {
    outDir: "../internal/web/dist/app",
    emptyOutDir: true, // outside the project root, so Vite asks to be told
    target: "es2022",
    sourcemap: false,
  },
  server: {
    host: "localhost",
    port: 5173,
    strictPort: true,
  },
});
