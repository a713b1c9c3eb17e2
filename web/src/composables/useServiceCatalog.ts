import { ref } from 'vue'
import { api } from '../api/client'
import type { CatalogEntry, ConnectionTest, ServiceConfigInput } from '../api/types'
import { useResource } from './useResource'

/**
 * The monitored services' configuration (GET /api/v1/config/services, polled) and the
 * changes an admin makes to it. Changes throw the API's error (for field messages) and
 * refresh the list when they succeed.
 */
export function useServiceCatalog(intervalMs = 15_000) {
  const list = useResource<CatalogEntry[]>(async (signal) => (await api.catalog(signal)).services, { intervalMs })
  const busy = ref(false)

  async function change<T>(fn: () => Promise<T>): Promise<T> {
    busy.value = true
    try {
      const result = await fn()
      await list.refresh()
      return result
    } finally {
      busy.value = false
    }
  }

  return {
    list,
    busy,
    add: (config: ServiceConfigInput) => change(() => api.addService(config)),
    replace: (name: string, config: ServiceConfigInput) => change(() => api.replaceService(name, config)),
    remove: (name: string) => change(() => api.deleteService(name)),
    /** Dry run: nothing is stored. */
    test: (config: ServiceConfigInput): Promise<ConnectionTest> => api.testService(config),
  }
}
