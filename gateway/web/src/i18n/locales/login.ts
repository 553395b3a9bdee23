export default {
  zh: {
    login: {
      subtitle: '化工园区安全生产视频智能分析网关',
      username: '用户名',
      password: '密码',
      submit: '登录',
      missing: '请输入用户名和密码',
      wrong: '用户名或密码错误',
      locked: '尝试次数过多，请稍后再试（{msg}）',
      failed: '登录失败：{msg}',
    },
  },
  en: {
    login: {
      subtitle: 'Video analytics gateway for plant safety',
      username: 'Username',
      password: 'Password',
      submit: 'Log in',
      missing: 'Enter username and password',
      wrong: 'Wrong username or password',
      locked: 'Too many attempts, try again later ({msg})',
      failed: 'Login failed: {msg}',
    },
  },
}
