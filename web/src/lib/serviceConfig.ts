import type { CatalogEntry, ServiceConfigInput } from '../api/types'
import { apiFieldErrors } from './alertRules'

/** The service form as strings and flags (empty string = not set). */
export interface ServiceForm {
  name: string
  upstream: string
  /** Whether the service has a port of its own (`listen`) or a path prefix on the shared port. */
  mode: 'prefix' | 'listen'
  listen: string
  path_prefix: string
  strip_prefix: boolean
  timeout_seconds: string
  connect_timeout_seconds: string
  preserve_host: boolean
  propagate_trace: boolean
  model_header: string
  model_json_field: string
  /** One pattern a line. */
  route_patterns: string
}

export type ServiceField = Exclude<keyof ServiceForm, 'mode'>
export type ServiceErrors = Partial<Record<ServiceField | 'general', string>>

export const SERVICE_FIELDS: readonly ServiceField[] = [
  'name',
  'upstream',
  'listen',
  'path_prefix',
  'strip_prefix',
  'timeout_seconds',
  'connect_timeout_seconds',
  'preserve_host',
  'propagate_trace',
  'model_header',
  'model_json_field',
  'route_patterns',
]

export function emptyServiceForm(): ServiceForm {
  return {
    name: '',
    upstream: 'http://',
    mode: 'prefix',
    listen: '',
    path_prefix: '',
    strip_prefix: true,
    timeout_seconds: '60',
    connect_timeout_seconds: '5',
    preserve_host: false,
    propagate_trace: false,
    model_header: 'X-Model-Name',
    model_json_field: '',
    route_patterns: '',
  }
}

export function entryToForm(entry: CatalogEntry): ServiceForm {
  const c = entry.config
  return {
    name: c.name,
    upstream: c.upstream,
    mode: c.listen ? 'listen' : 'prefix',
    listen: c.listen ?? '',
    path_prefix: c.path_prefix ?? '',
    strip_prefix: c.strip_prefix,
    timeout_seconds: String(c.timeout_seconds),
    connect_timeout_seconds: String(c.connect_timeout_seconds),
    preserve_host: c.preserve_host,
    propagate_trace: c.propagate_trace,
    model_header: c.model_header,
    model_json_field: c.model_json_field ?? '',
    route_patterns: c.route_patterns.join('\n'),
  }
}

const blank = (s: string): string | null => (s.trim() === '' ? null : s.trim())

/** The request body; `base` keeps the fields the form does not edit (TLS, sampling, drift). */
export function formToConfig(f: ServiceForm, base: Record<string, unknown> = {}): ServiceConfigInput {
  return {
    ...base,
    name: f.name.trim(),
    upstream: f.upstream.trim(),
    listen: f.mode === 'listen' ? blank(f.listen) : null,
    path_prefix: f.mode === 'prefix' ? blank(f.path_prefix) : null,
    strip_prefix: f.strip_prefix,
    route_patterns: f.route_patterns
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== ''),
    model_header: f.model_header.trim(),
    model_json_field: blank(f.model_json_field),
    timeout_seconds: Number(f.timeout_seconds),
    connect_timeout_seconds: Number(f.connect_timeout_seconds),
    preserve_host: f.preserve_host,
    propagate_trace: f.propagate_trace,
  }
}

/** Obvious mistakes caught before sending; the API checks the rest. */
export function validateServiceForm(f: ServiceForm): ServiceErrors {
  const e: ServiceErrors = {}
  if (!f.name.trim()) e.name = 'Required'
  if (!/^https?:\/\/\S+$/.test(f.upstream.trim())) e.upstream = 'An http:// or https:// URL'
  for (const key of ['timeout_seconds', 'connect_timeout_seconds'] as const) {
    const n = Number(f[key])
    if (f[key].trim() === '' || !Number.isFinite(n) || n <= 0) e[key] = 'A number of seconds above 0'
  }
  if (f.mode === 'listen' && !f.listen.trim()) e.listen = 'host:port, e.g. 127.0.0.1:9191'
  return e
}

// Whole-service checks come back with loc ["body"]; their message names the field.
const MESSAGE_FIELDS: readonly [RegExp, ServiceField][] = [
  [/\bname must\b/, 'name'],
  [/\bpath_prefix\b/, 'path_prefix'],
  [/\broute pattern\b/, 'route_patterns'],
]

/** A failed save as messages per form field (422 `detail[].loc`), the rest under `general`. */
export function serviceFieldErrors(error: unknown): ServiceErrors {
  const out = apiFieldErrors<ServiceField>(error, SERVICE_FIELDS)
  const general = out.general
  if (general) {
    const match = MESSAGE_FIELDS.find(([re]) => re.test(general))
    if (match && !out[match[1]]) {
      out[match[1]] = general.replace(/^Value error, /, '')
      delete out.general
    }
  }
  return out
}
