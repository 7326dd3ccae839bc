import { PHASE_DEVELOPMENT_SERVER } from 'next/constants.js';

/**
 * Static export into out/, served by `mlservice serve` at / on the API's port
 * (8085): the API is then the same origin (NEXT_PUBLIC_API_URL=''). `npm run
 * dev` serves on 6565 against http://localhost:8085 unless
 * NEXT_PUBLIC_API_URL / NEXT_PUBLIC_WEBSOCKET_URL say otherwise.
 */
export default function config(phase) {
  const dev = phase === PHASE_DEVELOPMENT_SERVER;
  /** @type {import('next').NextConfig} */
  return {
    output: 'export',
    trailingSlash: true,
    reactStrictMode: true,
    poweredByHeader: false,
    images: { unoptimized: true },
    // Always defined, so they are inlined at build time (no `process` shim in the bundle).
    env: {
      NEXT_PUBLIC_API_URL: process.env.NEXT_PUBLIC_API_URL ?? (dev ? 'http://localhost:8085' : ''),
      NEXT_PUBLIC_WEBSOCKET_URL: process.env.NEXT_PUBLIC_WEBSOCKET_URL ?? (dev ? 'ws://localhost:8085/ws' : ''),
    },
    eslint: { ignoreDuringBuilds: true },
  };
}
