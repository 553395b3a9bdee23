// Sessions: log in and out, and who is logged in (gateway/api/app.py auth routes, GET /api/me).
import type { Me, Role } from '../types/users'
import { api, post } from './http'

export const fetchMe = (): Promise<Me> => api<Me>('/api/me')

export const postLogin = (username: string, password: string): Promise<{ username: string; role: Role }> =>
  post('/api/auth/login', { username, password })

export const postLogout = (): Promise<void> => post('/api/auth/logout')
