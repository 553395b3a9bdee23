// Who is logged in, and what the role may do in the UI (the API enforces the same rules). One
// shared state for the whole console: the router's guard fills it, pages read it.
import { reactive } from 'vue'
import { fetchMe, postLogin, postLogout } from '../api/auth'
import type { User } from '../types/users'

export type { Role, User } from '../types/users'

export const auth = reactive<{ user: User | null; checked: boolean }>({ user: null, checked: false })

export function can(action: 'write' | 'admin'): boolean {
  const role = auth.user?.role
  if (action === 'admin') return role === 'admin'
  return role === 'admin' || role === 'operator'
}

/** Whether the user's role grants an API scope, e.g. 'cameras:write' (admin only) or 'uplink:read'. */
export function hasScope(scope: string): boolean {
  return auth.user?.scopes.includes(scope) ?? false
}

export async function loadMe(): Promise<User | null> {
  try {
    const me = await fetchMe()
    auth.user = { username: me.name, role: me.role, scopes: me.scopes ?? [] }
  } catch {
    auth.user = null
  }
  auth.checked = true
  return auth.user
}

export async function login(username: string, password: string): Promise<User> {
  const res = await postLogin(username, password)
  auth.user = { username: res.username, role: res.role, scopes: [] }
  // The scopes come from /api/me; the login answer names only the role.
  return (await loadMe()) ?? auth.user
}

export async function logout(): Promise<void> {
  try {
    await postLogout()
  } catch {
    // already logged out or gateway down: the local state is cleared either way
  }
  auth.user = null
}

/** The current user and the role checks, for a component's setup. */
export function useAuth() {
  return { auth, can, hasScope, login, logout }
}
