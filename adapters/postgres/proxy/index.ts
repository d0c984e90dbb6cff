/**
 * The Postgres wire-protocol proxy (see docs/proxy.md).
 */
export { startProxy, type ProxyLimits, type ProxyOptions, type RunningProxy } from './postgres-proxy.js';
export { parseUpstreamUrl, type UpstreamTarget } from './upstream-target.js';
