/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The SPA and the API must be one site so that the SameSite=Strict session
// cookies are sent: the dev server and `vite preview` forward /api and /health
// to Latchkey. The Host header is kept as the browser sent it (no
// changeOrigin), exactly like a reverse proxy in production, so the server's
// cross-origin (CSRF) check sees a same-origin request.
const api = process.env.LATCHKEY_API ?? 'http://127.0.0.1:8000';
const proxy = {
  '/api': { target: api, changeOrigin: false },
  '/health': { target: api, changeOrigin: false },
};

export default defineConfig({
  plugins: [react()],
  server: { proxy },
  preview: { proxy },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
