// Users, roles and API tokens (gateway/auth.py, gateway/api/users.py).

export type Role = 'admin' | 'operator' | 'viewer'

/** The logged-in user as the console keeps it. */
export interface User {
  username: string
  role: Role
  scopes: string[]
}

/** GET /api/me. */
export interface Me {
  name: string
  role: Role
  scopes?: string[]
}

export interface UserRow {
  id: number
  username: string
  display_name: string
  role: string
  enabled: boolean
  last_login_at: string | null
}

export interface NewUser {
  username: string
  display_name: string
  password: string
  role: string
}

export interface UserPatch {
  role?: string
  disabled?: boolean
  password?: string
}

export interface TokenRow {
  id: number
  name: string
  kind: string
  prefix: string
  role: string
  scopes: string[] | null
  created_at: string | null
  expires_at: string | null
  last_used_at: string | null
  revoked: boolean
}

export interface NewToken {
  name: string
  kind: string
  role: string
  scopes: string[] | null
  ttl_days: number | null
}
