import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import AuthBanner from './AuthBanner.vue'

describe('AuthBanner', () => {
  it('says that authentication is off and how to turn it on', () => {
    const w = mount(AuthBanner, { props: { enabled: false } })
    expect(w.get('[data-testid=auth-off-banner]').text()).toContain('Authentication is off')
    expect(w.text()).toContain('modelmonitor users add NAME --role admin')
  })

  it('is not shown when authentication is on', () => {
    const w = mount(AuthBanner, { props: { enabled: true } })
    expect(w.find('[data-testid=auth-off-banner]').exists()).toBe(false)
  })
})
