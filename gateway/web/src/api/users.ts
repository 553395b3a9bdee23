// Users and API tokens (admin only).
import type { NewToken, NewUser, TokenRow, UserPatch, UserRow } from '../types/users'
import { api, post } from './http'

export const listUsers = async (): Promise<UserRow[]> => (await api<{ items: UserRow[] }>('/api/users')).items

export const createUser = (body: NewUser): Promise<UserRow> => post<UserRow>('/api/users', body)

export const patchUser = (id: number, body: UserPatch): Promise<UserRow> =>
  api<UserRow>(`/api/users/${id}`, { method: 'PATCH', body })

export const listTokens = async (): Promise<TokenRow[]> => (await api<{ items: TokenRow[] }>('/api/tokens')).items

/** Create a token: the answer carries its secret, shown once. */
export const createToken = (body: NewToken): Promise<{ token: string }> => post<{ token: string }>('/api/tokens', body)

export const revokeToken = (id: number): Promise<unknown> => api(`/api/tokens/${id}`, { method: 'DELETE' })
