/** @type {import('next').NextConfig} */
const nextConfig = {
  // Static export into out/, served by `mlservice serve` at / on the API's port.
  output: 'export',
  trailingSlash: true,
  reactStrictMode: true,
  poweredByHeader: false,
  images: { unoptimized: true },
  // '' = same origin (the export is served by the API server). `npm run dev`
  // on 6565 sets NEXT_PUBLIC_API_URL=http://localhost:8085. Always defined so
  // it is inlined at build time instead of pulling in a `process` shim.
  env: {
    NEXT_PUBLIC_API_URL: process.env.NEXT_PUBLIC_API_URL ?? '',
    NEXT_PUBLIC_WEBSOCKET_URL: process.env.NEXT_PUBLIC_WEBSOCKET_URL ?? '',
  },
  eslint: { ignoreDuringBuilds: true },
};

export default nextConfig;
