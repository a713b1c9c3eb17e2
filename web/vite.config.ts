/// <reference types="vitest/config" />
import { defineConfig, type ProxyOptions } from 'vite'
import vue from '@vitejs/plugin-vue'

const backend = process.env.MODELMONITOR_API ?? 'http://127.0.0.1:8000'
// The API refuses writes and WebSockets from a foreign Origin; through the dev
// proxy the page's origin is Vite's, so present the API's own.
const sameOrigin: ProxyOptions = {
  configure: (proxy) => {
    proxy.on('proxyReq', (req) => req.setHeader('origin', backend))
    proxy.on('proxyReqWs', (req) => req.setHeader('origin', backend))
  },
}

export default defineConfig({
  plugins: [vue()],
  build: {
    outDir: '../src/modelmonitor/static',
    emptyOutDir: true,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      '/api': { target: backend, changeOrigin: true, ...sameOrigin },
      '/health': { target: backend, changeOrigin: true },
      '/ws': { target: backend, ws: true, changeOrigin: true, ...sameOrigin },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.spec.ts'],
    setupFiles: ['src/test-setup.ts'],
    restoreMocks: true,
  },
})
